// The gate's server-side TLS stream: OpenSSL reads and writes the
// non-blocking socket itself (SSL_set_fd), and the stream waits on the socket
// (async_wait) for whichever direction OpenSSL asks for. Either direction can
// need the other: a read may have to write (a TLS 1.3 KeyUpdate answer), a
// write may have to read.
//
// Why not boost::asio::ssl::stream: it keeps two 17 KiB buffers per stream
// plus a memory BIO pair (about 68 KiB fixed per connection, chriskohlhoff/
// asio#453) and copies every record through them. Here OpenSSL's own record
// buffers are released while a connection idles (SSL_MODE_RELEASE_BUFFERS),
// and a write of several buffers is coalesced into one SSL_write (one record
// instead of one per buffer).
//
// It is an AsyncReadStream / AsyncWriteStream, so Beast parses HTTP over it.
// One read and one write may be outstanding at a time, not two of the same
// kind, and the gate never has both (it reads a request, then writes the
// answer). Errors: a clean close_notify is net::error::eof, a close without
// it ssl::error::stream_truncated, a TLS failure an error in asio's SSL
// category (as asio::ssl::stream reports them).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>
#include <openssl/ssl.h>

namespace vaultwall::gate {

// The concrete executor of every gate socket: one io_context per I/O thread.
using Executor = boost::asio::io_context::executor_type;
using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;

class TlsStream {
public:
    using executor_type = Executor;

    // Takes the accepted socket; `ctx` is the server context (kept alive by
    // the SSL object's reference). Throws std::bad_alloc when SSL_new fails.
    TlsStream(Socket socket, SSL_CTX* ctx);
    ~TlsStream();
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    executor_type get_executor() noexcept { return socket_.get_executor(); }
    Socket& socket() noexcept { return socket_; }
    // Cancels what waits and closes the socket (what a timeout does).
    void close() noexcept;

    // void(error_code)
    template <class Handler>
    auto async_handshake(Handler&& handler) {
        return run<void(boost::system::error_code)>(Kind::handshake, nullptr, 0, std::forward<Handler>(handler));
    }
    // void(error_code): sends close_notify; does not wait for the peer's.
    template <class Handler>
    auto async_shutdown(Handler&& handler) {
        return run<void(boost::system::error_code)>(Kind::shutdown, nullptr, 0, std::forward<Handler>(handler));
    }
    // void(error_code): completes once application data can be read without
    // waiting (or on error). Holds no buffer meanwhile: what an idle
    // keep-alive connection waits with.
    template <class Handler>
    auto async_wait_data(Handler&& handler) {
        return run<void(boost::system::error_code)>(Kind::peek, nullptr, 0, std::forward<Handler>(handler));
    }

    // void(error_code, std::size_t)
    template <class MutableBufferSequence, class Handler>
    auto async_read_some(const MutableBufferSequence& buffers, Handler&& handler) {
        boost::asio::mutable_buffer b;
        for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers);
             ++it)
            if ((b = *it).size() != 0) break;
        return run<void(boost::system::error_code, std::size_t)>(Kind::read, b.data(), b.size(),
                                                                 std::forward<Handler>(handler));
    }
    // void(error_code, std::size_t). Several buffers are copied into one
    // write (one record up to 16 KiB) rather than a record each.
    template <class ConstBufferSequence, class Handler>
    auto async_write_some(const ConstBufferSequence& buffers, Handler&& handler) {
        boost::asio::const_buffer b;
        std::size_t buffers_used = 0;
        for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers);
             ++it)
            if (boost::asio::const_buffer(*it).size() != 0 && buffers_used++ == 0) b = *it;
        if (buffers_used > 1) {
            coalesced_.resize(std::min(boost::asio::buffer_size(buffers), kCoalesce));
            boost::asio::buffer_copy(boost::asio::buffer(coalesced_), buffers);
            b = boost::asio::buffer(coalesced_);
        }
        return run<void(boost::system::error_code, std::size_t)>(Kind::write, const_cast<void*>(b.data()), b.size(),
                                                                 std::forward<Handler>(handler));
    }

private:
    enum class Kind { handshake, read, write, shutdown, peek };
    static constexpr std::size_t kCoalesce = 16 * 1024;  // one full TLS record

    // One attempt at an operation. Returns true when it is done (ec, n set);
    // false when it must wait until the socket is writable (want_write) or
    // readable.
    bool step(Kind k, void* data, std::size_t size, boost::system::error_code& ec, std::size_t& n, bool& want_write);
    void done(Kind k) noexcept;  // gives back the coalescing buffer after a write

    // The composed operation: step; wait on the socket; step again. A result
    // available at once is posted, never delivered inside the initiating call.
    template <class Signature>
    struct Op {
        TlsStream& s;
        Kind k;
        void* data;
        std::size_t size;
        enum { starting, waiting, posting } state = starting;
        boost::system::error_code ec{};
        std::size_t n = 0;

        template <class Self>
        void operator()(Self& self, boost::system::error_code wait_ec = {}) {
            if (state == posting) return finish(self);
            if (state == waiting && wait_ec) {
                ec = wait_ec;
                return finish(self);
            }
            bool want_write = false;
            if (!s.step(k, data, size, ec, n, want_write)) {
                state = waiting;
                s.socket_.async_wait(want_write ? Socket::wait_write : Socket::wait_read, std::move(self));
                return;
            }
            if (state == starting) {
                state = posting;
                boost::asio::post(s.socket_.get_executor(), std::move(self));
                return;
            }
            finish(self);
        }
        template <class Self>
        void finish(Self& self) {
            s.done(k);
            if constexpr (std::is_same_v<Signature, void(boost::system::error_code)>)
                self.complete(ec);
            else
                self.complete(ec, n);
        }
    };

    template <class Signature, class Handler>
    auto run(Kind k, void* data, std::size_t size, Handler&& handler) {
        // Boost 1.74's async_compose takes the token as an lvalue (and moves from it).
        return boost::asio::async_compose<std::decay_t<Handler>, Signature>(Op<Signature>{*this, k, data, size},
                                                                           handler, socket_);
    }

    Socket socket_;
    SSL* ssl_ = nullptr;
    std::string coalesced_;  // empty but while a write of several buffers is pending
};

}  // namespace vaultwall::gate
