// IoPool: one io_context per I/O thread. Each connection lives on one context for its whole
// life, so its handlers never run concurrently and need no strand, and the threads do not
// contend on one shared scheduler queue (measured: a single shared context with two threads
// served fewer requests per second than one thread alone on a 2-core machine).
//
// Thread-safety: context() and stop() may be called from any thread; run() once, from main.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <memory>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace parley {

class IoPool {
 public:
  explicit IoPool(int threads);
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  int size() const { return static_cast<int>(contexts_.size()); }
  // The context that runs on the thread calling run(): acceptor, signals, timers.
  boost::asio::io_context& main() { return *contexts_.front(); }
  // Context `index` (0 <= index < size()); the server spreads connections over them.
  boost::asio::io_context& context(int index) { return *contexts_[static_cast<size_t>(index)]; }

  // Runs every context, one thread each (context 0 on the calling thread), until stop().
  void run();
  // Stops every context; run() returns once each thread has left its current handler.
  // Handlers still queued are not run (the server stops only after its connections ended).
  void stop();

 private:
  using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<WorkGuard> guards_;
};

}  // namespace parley
