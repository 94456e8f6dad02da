// Load and save a world as JSON in the conformance-trace format (../shared/conformance/README.md).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <stdexcept>
#include <string>

#include "envs/world.h"

namespace skillgrid::envs {

/// Bad input: malformed JSON, unknown names, positions outside the grid. The message is one
/// line naming the problem.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Builds a world from a state object (`initial` of a trace line); the `instr` field is not
/// read here. Throws InputError on anything malformed or out of range.
WorldState WorldFromJson(const nlohmann::json& state);

/// Writes a world as a state object (without `instr`), the inverse of WorldFromJson.
nlohmann::json WorldToJson(const WorldState& world);

/// Parses an object `{"type", "color", "state"[, "contains"]}`; `where` prefixes error messages.
Object ObjectFromJson(const nlohmann::json& obj, const std::string& where);

/// Writes an object as `{"type", "color", "state"[, "contains"]}`.
nlohmann::json ObjectToJson(const Object& obj);

}  // namespace skillgrid::envs
