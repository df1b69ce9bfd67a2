// The Asio/Beast names Souq uses, in one place.
#pragma once
#include <utility>  // Asio 1.74's awaitable.hpp uses std::exchange without it.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace souq {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
template <class T>
using awaitable = boost::asio::awaitable<T>;
using boost::asio::use_awaitable;
}  // namespace souq
