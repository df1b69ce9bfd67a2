// Small cryptographic helpers over libsodium: digests, HMAC, base64url,
// random tokens and constant-time comparison.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace souq::crypto {

std::string sha256_hex(std::string_view data);
// HMAC-SHA-256 of data with key, as raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);
// MD5 in hex: only where a protocol asks for it (Pusher's body_md5), never for security.
std::string md5_hex(std::string_view data);
std::string to_hex(std::string_view bytes);
std::string base64url_encode(std::string_view bytes);  // no padding
std::optional<std::string> base64url_decode(std::string_view text);
// `bytes` random bytes from the CSPRNG, base64url-encoded.
std::string random_token(size_t bytes = 32);
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace souq::crypto
