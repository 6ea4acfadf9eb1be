// A pause inside a coroutine of the I/O threads: the thread serves others meanwhile. Nothing
// cancels it; a loop that must stop sooner checks its own flag between short pauses.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <chrono>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "core/task.hpp"

namespace parley {

inline Task<void> sleep_for(std::chrono::milliseconds wait) {
  if (wait.count() <= 0) co_return;
  boost::asio::steady_timer::rebind_executor<IoExecutor>::other timer(
      co_await boost::asio::this_coro::executor, wait);
  boost::system::error_code ec;
  co_await timer.async_wait(boost::asio::redirect_error(use_task, ec));
}

}  // namespace parley
