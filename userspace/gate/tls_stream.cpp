#include "gate/tls_stream.hpp"

#include <cerrno>
#include <climits>
#include <new>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <openssl/err.h>

namespace vaultwall::gate {

TlsStream::TlsStream(Socket socket, SSL_CTX* ctx) : socket_(std::move(socket)) {
    ssl_ = SSL_new(ctx);
    if (!ssl_) throw std::bad_alloc();
    boost::system::error_code ignored;
    socket_.non_blocking(true, ignored);
    SSL_set_fd(ssl_, static_cast<int>(socket_.native_handle()));
    SSL_set_accept_state(ssl_);
    // A write retried after WANT_WRITE may come from another address (the
    // coalescing buffer, or Beast's re-prepared buffers); a partial write
    // returns what went out so far.
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
}

TlsStream::~TlsStream() {
    if (ssl_) SSL_free(ssl_);  // before the socket closes: SSL_free may not touch the fd
}

void TlsStream::close() noexcept {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    socket_.close(ignored);
}

void TlsStream::done(Kind k) noexcept {
    if (k == Kind::write && !coalesced_.empty()) std::string().swap(coalesced_);
}

bool TlsStream::step(Kind k, void* data, std::size_t size, boost::system::error_code& ec, std::size_t& n,
                     bool& want_write) {
    namespace error = boost::asio::error;
    n = 0;
    ec = {};
    if (!socket_.is_open()) {
        ec = error::bad_descriptor;
        return true;
    }
    int len = static_cast<int>(std::min<std::size_t>(size, INT_MAX));
    if ((k == Kind::read || k == Kind::write) && len == 0) return true;
    ERR_clear_error();
    errno = 0;
    int rc = 0;
    switch (k) {
    case Kind::handshake: rc = SSL_do_handshake(ssl_); break;
    case Kind::read: rc = SSL_read(ssl_, data, len); break;
    case Kind::write: rc = SSL_write(ssl_, data, len); break;
    case Kind::peek: {
        char c;
        rc = SSL_peek(ssl_, &c, 1);
        break;
    }
    case Kind::shutdown:
        rc = SSL_shutdown(ssl_);
        if (rc >= 0) return true;  // close_notify sent (0: the peer's not awaited)
        break;
    }
    if (rc > 0) {
        if (k == Kind::read || k == Kind::write) n = static_cast<std::size_t>(rc);
        return true;
    }
    switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ: want_write = false; return false;
    case SSL_ERROR_WANT_WRITE: want_write = true; return false;
    case SSL_ERROR_ZERO_RETURN: ec = error::eof; return true;  // close_notify from the peer
    case SSL_ERROR_SYSCALL:
        if (unsigned long e = ERR_peek_error(); e != 0) {
            ec = boost::system::error_code(static_cast<int>(e), error::get_ssl_category());
        } else if (errno != 0 && rc < 0) {
            ec = boost::system::error_code(errno, boost::system::system_category());
        } else {
            ec = boost::asio::ssl::error::stream_truncated;  // EOF without close_notify
        }
        return true;
    default: {
        unsigned long e = ERR_get_error();
        ec = e ? boost::system::error_code(static_cast<int>(e), error::get_ssl_category())
               : boost::system::error_code(boost::asio::ssl::error::unspecified_system_error);
        return true;
    }
    }
}

}  // namespace vaultwall::gate
