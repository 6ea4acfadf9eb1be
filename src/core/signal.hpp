// Signal: a coroutine on an I/O thread waits until something else on the same thread says
// "go" (data arrived, a transfer finished, the client went away), or until a deadline.
//
// Built on a steady_timer, the idiom Asio 1.74 offers before it had cancellation slots: a wait
// is a timer set to the deadline, and notify() cancels the timer. A notify() with no waiter is
// remembered, so the next wait returns at once; several notifies before a wait count as one.
//
// Not thread-safe: the waiter and every notifier run on the executor's single thread.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <chrono>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/task.hpp"

namespace parley {

class Signal {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Signal(const IoExecutor& executor) : timer_(executor) {}
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;

  // Wakes the waiter, or the next one to wait.
  void notify() {
    pending_ = true;
    if (waiting_) timer_.cancel();
  }

  // Waits for notify() or until `deadline`. True when notified (the notification is consumed),
  // false when the deadline passed first.
  Task<bool> wait_until(Clock::time_point deadline) {
    if (!pending_) {
      waiting_ = true;
      boost::system::error_code ec;
      timer_.expires_at(deadline);
      co_await timer_.async_wait(boost::asio::redirect_error(use_task, ec));
      waiting_ = false;
    }
    const bool notified = pending_;
    pending_ = false;
    co_return notified;
  }

  Task<void> wait() { co_await wait_until(Clock::time_point::max()); }

 private:
  boost::asio::steady_timer::rebind_executor<IoExecutor>::other timer_;
  bool pending_ = false;
  bool waiting_ = false;
};

}  // namespace parley
