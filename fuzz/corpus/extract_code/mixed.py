import os

def f(x):
    return x

class C:
    pass

function g() {
}
