#include "envs/state_io.h"

#include <nlohmann/json.hpp>

namespace skillgrid::envs {

namespace {

using nlohmann::json;

const json& Field(const json& j, const char* name, const std::string& where) {
  if (!j.is_object()) throw InputError(where + ": expected a JSON object");
  auto it = j.find(name);
  if (it == j.end()) throw InputError(where + ": missing field '" + name + "'");
  return *it;
}

int IntField(const json& j, const char* name, const std::string& where, int lo, int hi) {
  const json& v = Field(j, name, where);
  if (!v.is_number_integer()) throw InputError(where + ": field '" + name + "' is not an integer");
  const auto x = v.get<long long>();
  if (x < lo || x > hi) {
    throw InputError(where + ": field '" + name + "' = " + std::to_string(x) + " is outside [" +
                     std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<int>(x);
}

Pos PosField(const json& j, const char* name, const std::string& where) {
  const json& v = Field(j, name, where);
  if (!v.is_array() || v.size() != 2 || !v[0].is_number_integer() || !v[1].is_number_integer()) {
    throw InputError(where + ": field '" + name + "' is not an [x, y] pair of integers");
  }
  return {v[0].get<int>(), v[1].get<int>()};
}

std::string StringField(const json& j, const char* name, const std::string& where) {
  const json& v = Field(j, name, where);
  if (!v.is_string()) throw InputError(where + ": field '" + name + "' is not a string");
  return v.get<std::string>();
}

}  // namespace

Object ObjectFromJson(const json& j, const std::string& where) {
  const std::string type_name = StringField(j, "type", where);
  const std::string color_name = StringField(j, "color", where);
  Object o;
  if (!ParseObjectType(type_name, &o.type) || o.type == ObjectType::kUnseen ||
      o.type == ObjectType::kEmpty || o.type == ObjectType::kAgent) {
    throw InputError(where + ": unknown object type '" + type_name + "'");
  }
  if (!ParseColor(color_name, &o.color)) {
    throw InputError(where + ": unknown colour '" + color_name + "'");
  }
  o.state = static_cast<uint8_t>(IntField(j, "state", where, 0, 2));
  if (o.type != ObjectType::kDoor && o.state != 0) {
    throw InputError(where + ": a " + type_name + " must have state 0, got " +
                     std::to_string(o.state));
  }
  auto contains = j.find("contains");
  if (contains != j.end() && !contains->is_null()) {
    if (o.type != ObjectType::kBox) throw InputError(where + ": only a box may have 'contains'");
    const Object inner = ObjectFromJson(*contains, where + ".contains");
    if (inner.inner_type != ObjectType::kEmpty) {
      throw InputError(where + ": objects inside a box cannot contain anything");
    }
    o.inner_type = inner.type;
    o.inner_color = inner.color;
    o.inner_state = inner.state;
  }
  return o;
}

json ObjectToJson(const Object& o) {
  json j = {{"type", std::string(ObjectTypeName(o.type))},
            {"color", std::string(ColorName(o.color))},
            {"state", static_cast<int>(o.state)}};
  if (o.type == ObjectType::kBox && o.inner_type != ObjectType::kEmpty) {
    j["contains"] = {{"type", std::string(ObjectTypeName(o.inner_type))},
                     {"color", std::string(ColorName(o.inner_color))},
                     {"state", static_cast<int>(o.inner_state)}};
  }
  return j;
}

WorldState WorldFromJson(const json& j) {
  const std::string where = "state";
  if (!j.is_object()) throw InputError("state: expected a JSON object");
  constexpr int kMaxSide = 1024;
  const int width = IntField(j, "width", where, 3, kMaxSide);
  const int height = IntField(j, "height", where, 3, kMaxSide);
  WorldState w;
  w.agent_view_size = IntField(j, "agent_view_size", where, 3, 31);
  if (w.agent_view_size % 2 == 0) {
    throw InputError("state: agent_view_size must be odd, got " +
                     std::to_string(w.agent_view_size));
  }
  w.grid = Grid(width, height, std::max(6, w.agent_view_size - 1));
  w.agent_pos = PosField(j, "agent_pos", where);
  if (!w.grid.InBounds(w.agent_pos)) {
    throw InputError("state: agent_pos [" + std::to_string(w.agent_pos.x) + ", " +
                     std::to_string(w.agent_pos.y) + "] is outside the " + std::to_string(width) +
                     "x" + std::to_string(height) + " grid");
  }
  w.agent_dir = IntField(j, "agent_dir", where, 0, 3);
  w.step_count = IntField(j, "step_count", where, 0, 1 << 30);
  w.max_steps = IntField(j, "max_steps", where, 1, 1 << 30);
  if (auto st = j.find("see_through_walls"); st != j.end()) {
    if (!st->is_boolean()) throw InputError("state: field 'see_through_walls' is not a boolean");
    w.see_through_walls = st->get<bool>();
  }
  if (auto m = j.find("mission"); m != j.end() && !m->is_null()) {
    w.mission = StringField(j, "mission", where);
  }

  const json& cells = Field(j, "cells", where);
  if (!cells.is_array()) throw InputError("state: field 'cells' is not an array");
  for (size_t k = 0; k < cells.size(); ++k) {
    const std::string cw = "state.cells[" + std::to_string(k) + "]";
    const json& c = cells[k];
    Object o = ObjectFromJson(c, cw);
    const int x = IntField(c, "x", cw, -kMaxSide, kMaxSide);
    const int y = IntField(c, "y", cw, -kMaxSide, kMaxSide);
    if (!w.grid.InBounds(x, y)) {
      throw InputError(cw + ": position [" + std::to_string(x) + ", " + std::to_string(y) +
                       "] is outside the " + std::to_string(width) + "x" +
                       std::to_string(height) + " grid");
    }
    if (!w.grid.at(x, y).empty()) {
      throw InputError(cw + ": two objects at [" + std::to_string(x) + ", " + std::to_string(y) +
                       "]");
    }
    w.Place({x, y}, o);
  }
  if (!w.grid.at(w.agent_pos).can_overlap()) {
    throw InputError("state: the agent stands on a " +
                     std::string(ObjectTypeName(w.grid.at(w.agent_pos).type)));
  }

  auto carrying = j.find("carrying");
  if (carrying != j.end() && !carrying->is_null()) {
    Object c = ObjectFromJson(*carrying, "state.carrying");
    if (!c.can_pickup()) throw InputError("state.carrying: a " +
                                          std::string(ObjectTypeName(c.type)) +
                                          " cannot be carried");
    c.id = w.next_id++;
    w.carrying = c;
  }

  auto rooms = j.find("rooms");
  if (rooms != j.end() && !rooms->is_null()) {
    const std::string rw = "state.rooms";
    w.rooms.room_size = IntField(*rooms, "room_size", rw, 3, kMaxSide);
    w.rooms.num_rows = IntField(*rooms, "num_rows", rw, 1, kMaxSide);
    w.rooms.num_cols = IntField(*rooms, "num_cols", rw, 1, kMaxSide);
    const int rw_width = (w.rooms.room_size - 1) * w.rooms.num_cols + 1;
    const int rw_height = (w.rooms.room_size - 1) * w.rooms.num_rows + 1;
    if (rw_width != width || rw_height != height) {
      throw InputError("state.rooms: " + std::to_string(w.rooms.num_rows) + "x" +
                       std::to_string(w.rooms.num_cols) + " rooms of size " +
                       std::to_string(w.rooms.room_size) + " make a " + std::to_string(rw_width) +
                       "x" + std::to_string(rw_height) + " grid, not " + std::to_string(width) +
                       "x" + std::to_string(height));
    }
  }
  return w;
}

json WorldToJson(const WorldState& w) {
  json cells = json::array();
  for (int y = 0; y < w.grid.height(); ++y) {
    for (int x = 0; x < w.grid.width(); ++x) {
      const Object& o = w.grid.at(x, y);
      if (o.empty()) continue;
      json c = ObjectToJson(o);
      c["x"] = x;
      c["y"] = y;
      cells.push_back(std::move(c));
    }
  }
  json j = {{"width", w.grid.width()},
            {"height", w.grid.height()},
            {"agent_pos", {w.agent_pos.x, w.agent_pos.y}},
            {"agent_dir", w.agent_dir},
            {"carrying", w.carrying.empty() ? json(nullptr) : ObjectToJson(w.carrying)},
            {"step_count", w.step_count},
            {"max_steps", w.max_steps},
            {"agent_view_size", w.agent_view_size},
            {"see_through_walls", w.see_through_walls},
            {"mission", w.mission},
            {"cells", std::move(cells)}};
  if (w.rooms.valid()) {
    j["rooms"] = {{"room_size", w.rooms.room_size},
                  {"num_rows", w.rooms.num_rows},
                  {"num_cols", w.rooms.num_cols}};
  }
  return j;
}

}  // namespace skillgrid::envs
