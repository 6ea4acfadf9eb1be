// Task<T>: the coroutine type of everything that runs on the I/O threads (the server's
// connections, route handlers, waits on the blocking pool).
//
// Asio's default awaitable carries a type-erased executor (any_io_executor) that every
// suspension copies, queries and destroys. Each connection lives on one io_context for its
// whole life, so the concrete io_context executor is all a coroutine ever needs; naming it
// took a measurable share of the CPU per request off the hot path.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace parley {

using IoExecutor = boost::asio::io_context::executor_type;

template <typename T>
using Task = boost::asio::awaitable<T, IoExecutor>;

// The completion token that resumes a Task: `co_await socket.async_read_some(buf, use_task)`.
inline constexpr boost::asio::use_awaitable_t<IoExecutor> use_task{};

}  // namespace parley
