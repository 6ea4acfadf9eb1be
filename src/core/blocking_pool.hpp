// BlockingPool: where blocking work goes (SQLite calls, CPU-heavy jobs) so that the I/O
// threads only ever wait on sockets. A coroutine writes
//     auto session = co_await pool.run([&] { return storage.sessions().get(id); });
// and resumes on its own executor once the call has finished on a pool thread.
//
// Thread-safe. The function runs exactly once; its exceptions propagate to the awaiting
// coroutine. Captured references stay valid because the coroutine is suspended until then.
// The queue is unbounded here; callers bound it by bounding connections and requests.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <atomic>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "core/task.hpp"

namespace parley {

class BlockingPool {
 public:
  explicit BlockingPool(int threads) : threads_(threads), pool_(static_cast<size_t>(threads)) {}
  ~BlockingPool() { pool_.join(); }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  template <typename F>
  Task<std::invoke_result_t<F&>> run(F f) {
    using R = std::invoke_result_t<F&>;
    std::optional<R> result;
    std::exception_ptr error;
    queued_.fetch_add(1, std::memory_order_relaxed);
    co_await boost::asio::async_initiate<decltype(use_task), void()>(
        [this, &f, &result, &error](auto handler) {
          boost::asio::post(pool_,
                            [this, &f, &result, &error, handler = std::move(handler)]() mutable {
                              queued_.fetch_sub(1, std::memory_order_relaxed);
                              try {
                                result.emplace(f());
                              } catch (...) {
                                error = std::current_exception();
                              }
                              auto ex = boost::asio::get_associated_executor(handler);
                              boost::asio::dispatch(ex, std::move(handler));
                            });
        },
        use_task);
    if (error) std::rethrow_exception(error);
    co_return std::move(*result);
  }

  // Runs `f` on the pool without waiting for it (background refreshes).
  void post(std::function<void()> f) { boost::asio::post(pool_, std::move(f)); }

  int threads() const { return threads_; }
  // Jobs waiting for a thread (a saturation signal for diagnostics).
  int64_t queued() const { return queued_.load(std::memory_order_relaxed); }

  // Stops accepting work and waits for running jobs.
  void join() { pool_.join(); }

 private:
  int threads_;
  std::atomic<int64_t> queued_{0};
  boost::asio::thread_pool pool_;
};

}  // namespace parley
