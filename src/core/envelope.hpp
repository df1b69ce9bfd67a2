// The API's response envelopes (ARCHITECTURE.md "HTTP API conventions"),
// built here once and used by every route.
#pragma once
#include <string>

#include "core/error.hpp"
#include "core/json.hpp"

namespace souq {

// {"status":"success","data":…,"meta":{"request_id","timestamp",…extra_meta}}
json success_envelope(json data, const std::string& request_id, const json& extra_meta = nullptr);
// {"request_id","timestamp",…extra}
json envelope_meta(const std::string& request_id, const json& extra);
// {"status":"error","error":{"code","message","details"?},"meta":{…}}
json error_envelope(const ApiError& error, const std::string& request_id);

}  // namespace souq
