// The machine's floor for the HTTP benchmarks: an epoll loop that answers every request with
// a fixed /health-sized response and does nothing else (no parsing beyond finding the end of
// the headers, no routing, no logging, no metrics). scripts/bench.sh runs the same wrk
// commands against it, so that Parley's numbers can be read against what this machine, its
// scheduler and wrk on the same cores allow at all.
//
// Usage: parley_floor_server PORT THREADS   (listens on 127.0.0.1; prints "ready" when it is)
// Not a server: it trusts its client (wrk) completely.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr std::string_view kResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 56\r\n\r\n"
    R"({"status":"alive","version":"0.1.0","uptime_seconds":12})";

void serve(int listener) {
  int epoll = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  ev.data.fd = listener;
  epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &ev);
  std::array<epoll_event, 128> events{};
  std::array<char, 16384> buf{};
  while (true) {
    int n = epoll_wait(epoll, events.data(), static_cast<int>(events.size()), -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[static_cast<size_t>(i)].data.fd;
      if (fd == listener) {
        int conn = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
        if (conn < 0) continue;
        int one = 1;
        setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        epoll_event cev{};
        cev.events = EPOLLIN;
        cev.data.fd = conn;
        epoll_ctl(epoll, EPOLL_CTL_ADD, conn, &cev);
        continue;
      }
      ssize_t got = read(fd, buf.data(), buf.size());
      if (got <= 0) {
        close(fd);
        continue;
      }
      // One response per request in what arrived (wrk sends whole requests, no bodies).
      std::string_view data(buf.data(), static_cast<size_t>(got));
      for (size_t at = data.find("\r\n\r\n"); at != std::string_view::npos;
           at = data.find("\r\n\r\n", at + 4)) {
        if (write(fd, kResponse.data(), kResponse.size()) < 0) break;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PORT THREADS\n", argv[0]);
    return 2;
  }
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 1024) != 0) {
    std::perror("listen");
    return 1;
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, std::atoi(argv[2])); ++i) threads.emplace_back(serve, listener);
  std::printf("ready\n");
  std::fflush(stdout);
  for (auto& t : threads) t.join();
}
