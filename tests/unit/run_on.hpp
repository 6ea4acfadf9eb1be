// Runs a coroutine to its end on an io_context, driving the context from the test's thread
// (the way the server's I/O threads would). The result goes through a Task<void> because
// co_spawn needs a default-constructible value type, which Result<T> is not.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <exception>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "core/task.hpp"

namespace parley::testing {

template <typename T>
T run_on(boost::asio::io_context& context, Task<T> task) {
  std::optional<T> result;
  std::exception_ptr error;
  bool done = false;
  boost::asio::co_spawn(
      context,
      [&]() -> Task<void> {
        T value = co_await std::move(task);
        result.emplace(std::move(value));
      },
      [&](std::exception_ptr e) {
        error = e;
        done = true;
      });
  while (!done) {
    // run_one() stops the context whenever it finds no work; later calls need a restart.
    if (context.stopped()) context.restart();
    context.run_one();
  }
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

}  // namespace parley::testing
