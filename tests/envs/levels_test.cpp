// Tests for the level generators (envs/levels*.cpp) and BabyAIEnv (envs/level.cpp): every
// registered id over 100 seeds (mission text, named objects, agent cell, max_steps rule,
// determinism, level-specific structure), and agreement with the reference episodes in
// ../shared/conformance/babyai_public.jsonl (grid size, rooms, max_steps, structure).
#include "envs/level.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "envs/instr.h"
#include "envs/levels_internal.h"
#include "envs/state_io.h"

namespace skillgrid::envs {
namespace {

using nlohmann::json;

constexpr int kSeeds = 100;

bool IsMovable(const Object& o) {
  return o.type == ObjectType::kKey || o.type == ObjectType::kBall || o.type == ObjectType::kBox;
}

struct Cell {
  Pos pos;
  Object obj;
};

// Every non-empty, non-wall cell of the grid.
std::vector<Cell> Objects(const WorldState& w) {
  std::vector<Cell> out;
  for (int y = 0; y < w.grid.height(); ++y) {
    for (int x = 0; x < w.grid.width(); ++x) {
      const Object& o = w.grid.at(x, y);
      if (!o.empty() && o.type != ObjectType::kWall) out.push_back({{x, y}, o});
    }
  }
  return out;
}

std::vector<Cell> OfType(const WorldState& w, ObjectType t) {
  std::vector<Cell> out;
  for (const Cell& c : Objects(w)) {
    if (c.obj.type == t) out.push_back(c);
  }
  return out;
}

int CountMovable(const WorldState& w) {
  int n = 0;
  for (const Cell& c : Objects(w)) n += IsMovable(c.obj);
  return n;
}

Pos RoomOf(const WorldState& w, Pos p) { return w.rooms.RoomOf(p); }

// True if p lies strictly inside room (col, row) (not on its walls).
bool InRoomInterior(const WorldState& w, int col, int row, Pos p) {
  const Pos top = w.rooms.RoomTopLeft(col, row);
  const int rs = w.rooms.room_size;
  return p.x > top.x && p.y > top.y && p.x < top.x + rs - 1 && p.y < top.y + rs - 1;
}

// The door walls of a door cell: true if it lies on a wall of room (col, row).
bool OnRoomWall(const WorldState& w, int col, int row, Pos p) {
  return w.rooms.Inside(col, row, p) && !InRoomInterior(w, col, row, p);
}

// check_objs_reachable by a plain flood fill (the reference's algorithm).
bool AllReachable(const WorldState& w) {
  const int W = w.grid.width(), H = w.grid.height();
  std::vector<char> seen(static_cast<size_t>(W * H), 0);
  std::vector<Pos> stack{w.agent_pos};
  while (!stack.empty()) {
    const Pos p = stack.back();
    stack.pop_back();
    if (!w.grid.InBounds(p) || seen[p.y * W + p.x]) continue;
    seen[p.y * W + p.x] = 1;
    const Object& o = w.grid.at(p);
    if (!o.empty() && o.type != ObjectType::kDoor) continue;
    for (int d = 0; d < 4; ++d) stack.push_back({p.x + DirVec(d).x, p.y + DirVec(d).y});
  }
  for (const Cell& c : Objects(w)) {
    if (!seen[c.pos.y * W + c.pos.x]) return false;
  }
  return true;
}

// An instruction's JSON with every "strict" flag dropped (the text does not carry it).
json WithoutStrict(json j) {
  if (!j.is_object()) return j;
  j.erase("strict");
  for (const char* k : {"a", "b"}) {
    if (j.contains(k)) j[k] = WithoutStrict(j[k]);
  }
  return j;
}

// Visits every node of an instruction.
template <typename F>
void ForEachNode(const Instr& in, F f) {
  for (int i = 0; i < in.num_nodes; ++i) f(in.nodes[i]);
}

int NumDescs(const InstrNode& n) {
  if (n.kind == InstrKind::kPutNext) return 2;
  return IsActionKind(n.kind) ? 1 : 0;
}

bool HasLocation(const Instr& in) {
  bool any = false;
  ForEachNode(in, [&](const InstrNode& n) {
    for (int k = 0; k < NumDescs(n); ++k) any = any || n.desc[k].loc != DescLoc::kNone;
  });
  return any;
}

// Max navigations an instruction of a LevelGen config can need (the table's range).
int MaxNavs(const LevelGenOptions& o) {
  const int action = (o.action_kinds & kActPutNext) ? 2 : 1;
  if (o.instr_kinds & kKindSeq) return 4 * action;
  if (o.instr_kinds & kKindAnd) return 2 * action;
  return action;
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// ---------------------------------------------------------------------------------------------
// Structure every episode of a level must have. Applied to our episodes and to the reference's
// (conformance initial states), so the rules are checked against the reference as well.

// The locked room of a world with one locked door: of the door's two rooms, the one whose
// only door it is (connect_all never adds doors to a locked room).
Pos LockedRoom(const WorldState& w, Pos door) {
  const int step = w.rooms.room_size - 1;
  const Pos a = w.rooms.RoomOf(door);
  const Pos b = door.x % step == 0 ? Pos{a.x - 1, a.y} : Pos{a.x, a.y - 1};
  auto doors_of = [&](Pos r) {
    int n = 0;
    for (int y = 0; y < w.grid.height(); ++y) {
      for (int x = 0; x < w.grid.width(); ++x) {
        n += w.grid.at(x, y).is_door() && OnRoomWall(w, r.x, r.y, {x, y});
      }
    }
    return n;
  };
  return doors_of(a) == 1 ? a : b;
}

// `ours`: an episode of ours (rules where we deliberately differ from the reference, such as
// keeping keys out of locked rooms, are checked on ours only).
void CheckStructure(const LevelConfig& c, const WorldState& w, const Instr& in,
                    const std::string& where, bool ours) {
  SCOPED_TRACE(where + " mission \"" + w.mission + "\"");
  const InstrNode& root = in.root();
  const std::vector<Cell> objs = Objects(w);
  const std::vector<Cell> doors = OfType(w, ObjectType::kDoor);
  const int movable = CountMovable(w) + (w.carrying.empty() ? 0 : 1);
  auto locked_doors = [&] {
    std::vector<Cell> v;
    for (const Cell& d : doors) {
      if (d.obj.is_locked_door()) v.push_back(d);
    }
    return v;
  };
  // Doors lie on room walls, never in a corner.
  for (const Cell& d : doors) {
    const int step = w.rooms.room_size - 1;
    EXPECT_TRUE((d.pos.x % step == 0) != (d.pos.y % step == 0)) << "door off a wall slot";
  }
  switch (c.family) {
    case LevelFamily::kGoToRedBall: {
      ASSERT_EQ(root.kind, InstrKind::kGoTo);
      EXPECT_EQ(root.desc[0].type, ObjectType::kBall);
      EXPECT_EQ(root.desc[0].color, Color::kRed);
      if (c.grey_distractors || c.num_objs == 0) {
        EXPECT_EQ(w.mission, "go to the red ball") << "the only red ball";
      }
      EXPECT_TRUE(doors.empty());
      EXPECT_EQ(movable, c.num_objs + 1);
      int red_balls = 0;
      for (const Cell& o : objs) {
        const bool red_ball = o.obj.type == ObjectType::kBall && o.obj.color == Color::kRed;
        red_balls += red_ball;
        if (c.grey_distractors && !red_ball) {
          EXPECT_EQ(o.obj.color, Color::kGrey) << "GoToRedBallGrey: distractors are grey";
        }
      }
      EXPECT_GE(red_balls, 1);
      if (c.grey_distractors) {
        EXPECT_EQ(red_balls, 1);
      }
      break;
    }
    case LevelFamily::kGoToObj:
      ASSERT_EQ(root.kind, InstrKind::kGoTo);
      EXPECT_EQ(objs.size(), 1u) << "GoToObj: exactly one object";
      EXPECT_TRUE(StartsWith(w.mission, "go to the "));
      break;
    case LevelFamily::kGoToLocal:
      ASSERT_EQ(root.kind, InstrKind::kGoTo);
      EXPECT_EQ(movable, c.num_objs);
      EXPECT_TRUE(doors.empty());
      break;
    case LevelFamily::kGoTo:
      ASSERT_EQ(root.kind, InstrKind::kGoTo);
      EXPECT_EQ(movable, c.num_objs);
      EXPECT_TRUE(locked_doors().empty());
      for (const Cell& d : doors) {
        EXPECT_EQ(d.obj.state == static_cast<uint8_t>(DoorState::kOpen), c.doors_open);
      }
      break;
    case LevelFamily::kGoToImpUnlock: {
      ASSERT_EQ(root.kind, InstrKind::kGoTo);
      const std::vector<Cell> locked = locked_doors();
      ASSERT_EQ(locked.size(), 1u);
      const Color color = locked[0].obj.color;
      const Pos room = LockedRoom(w, locked[0].pos);
      bool key = false;
      for (const Cell& o : objs) {
        key = key || (o.obj.type == ObjectType::kKey && o.obj.color == color &&
                      (!ours || !InRoomInterior(w, room.x, room.y, o.pos)));
      }
      EXPECT_TRUE(key) << "the locked door's key exists (ours: outside the locked room)";
      EXPECT_NE(RoomOf(w, w.agent_pos), room) << "the agent starts outside the locked room";
      // num_objs per room (the locked one too, as Minigrid 3.1 does), the key, the target.
      EXPECT_EQ(movable, c.num_objs * w.rooms.num_rows * w.rooms.num_cols + 2);
      bool target_inside = false;
      for (const Cell& o : objs) {
        target_inside = target_inside ||
                        (InRoomInterior(w, room.x, room.y, o.pos) &&
                         o.obj.type == *root.desc[0].type && o.obj.color == *root.desc[0].color);
      }
      EXPECT_TRUE(target_inside) << "a target lies in the locked room";
      break;
    }
    case LevelFamily::kGoToRedBlueBall: {
      ASSERT_EQ(root.kind, InstrKind::kGoTo);
      int n = 0;
      for (const Cell& o : objs) {
        n += o.obj.type == ObjectType::kBall &&
             (o.obj.color == Color::kRed || o.obj.color == Color::kBlue);
      }
      EXPECT_EQ(n, 1) << "exactly one red or blue ball";
      EXPECT_EQ(movable, c.num_objs + 1);
      break;
    }
    case LevelFamily::kGoToDoor:
      ASSERT_EQ(root.kind, InstrKind::kGoTo);
      EXPECT_EQ(root.desc[0].type, ObjectType::kDoor);
      EXPECT_EQ(doors.size(), 4u);
      EXPECT_EQ(movable, 0);
      for (const Cell& d : doors) EXPECT_TRUE(OnRoomWall(w, 1, 1, d.pos));
      break;
    case LevelFamily::kGoToObjDoor:
      ASSERT_EQ(root.kind, InstrKind::kGoTo);
      EXPECT_EQ(doors.size(), 4u);
      EXPECT_EQ(movable, c.num_objs);
      for (const Cell& o : objs) EXPECT_TRUE(w.rooms.Inside(1, 1, o.pos));
      break;
    case LevelFamily::kOpen:
      ASSERT_EQ(root.kind, InstrKind::kOpen);
      EXPECT_EQ(movable, c.num_objs);
      EXPECT_TRUE(locked_doors().empty());
      break;
    case LevelFamily::kOpenRedDoor:
      ASSERT_EQ(root.kind, InstrKind::kOpen);
      ASSERT_EQ(doors.size(), 1u);
      EXPECT_EQ(doors[0].obj.color, Color::kRed);
      EXPECT_EQ(doors[0].obj.state, static_cast<uint8_t>(DoorState::kClosed));
      EXPECT_EQ(w.mission, "open the red door");
      break;
    case LevelFamily::kOpenDoor: {
      ASSERT_EQ(root.kind, InstrKind::kOpen);
      EXPECT_EQ(root.strict, c.strict);
      ASSERT_EQ(doors.size(), 4u);
      std::set<int> colors;
      for (const Cell& d : doors) {
        colors.insert(static_cast<int>(d.obj.color));
        EXPECT_FALSE(d.obj.is_locked_door());
        EXPECT_TRUE(OnRoomWall(w, 1, 1, d.pos));
      }
      EXPECT_EQ(colors.size(), 4u) << "four distinct colours";
      const ObjDesc& d = root.desc[0];
      EXPECT_NE(d.color.has_value(), d.loc != DescLoc::kNone) << "by colour or by location";
      if (c.select_by == SelectBy::kColor) {
        EXPECT_TRUE(d.color.has_value());
      }
      if (c.select_by == SelectBy::kLoc) {
        EXPECT_NE(d.loc, DescLoc::kNone);
      }
      break;
    }
    case LevelFamily::kOpenTwoDoors: {
      ASSERT_EQ(root.kind, InstrKind::kBefore);
      const InstrNode& a = in.nodes[root.a];
      const InstrNode& b = in.nodes[root.b];
      ASSERT_EQ(a.kind, InstrKind::kOpen);
      ASSERT_EQ(b.kind, InstrKind::kOpen);
      EXPECT_EQ(a.strict, c.strict);
      EXPECT_FALSE(b.strict);
      if (c.first_color) {
        EXPECT_EQ(a.desc[0].color, c.first_color);
      }
      if (c.second_color) {
        EXPECT_EQ(b.desc[0].color, c.second_color);
      }
      ASSERT_EQ(doors.size(), 2u);
      break;
    }
    case LevelFamily::kOpenDoorsOrder: {
      EXPECT_EQ(static_cast<int>(doors.size()), c.num_objs);
      ForEachNode(in, [&](const InstrNode& n) {
        if (IsActionKind(n.kind)) {
          EXPECT_EQ(n.kind, InstrKind::kOpen);
          EXPECT_EQ(n.strict, c.strict);
        }
      });
      EXPECT_TRUE(root.kind == InstrKind::kOpen || root.kind == InstrKind::kBefore ||
                  root.kind == InstrKind::kAfter);
      break;
    }
    case LevelFamily::kPickup:
    case LevelFamily::kUnblockPickup:
      ASSERT_EQ(root.kind, InstrKind::kPickup);
      EXPECT_EQ(movable, c.num_objs);
      if (c.family == LevelFamily::kUnblockPickup) {
        EXPECT_FALSE(AllReachable(w)) << "UnblockPickup: some object needs unblocking";
      }
      break;
    case LevelFamily::kPickupDist: {
      ASSERT_EQ(root.kind, InstrKind::kPickup);
      EXPECT_EQ(root.strict, c.strict);
      EXPECT_EQ(movable, c.num_objs);
      std::set<std::pair<int, int>> looks;
      for (const Cell& o : objs) looks.insert({int(o.obj.type), int(o.obj.color)});
      EXPECT_EQ(static_cast<int>(looks.size()), c.num_objs) << "distinct objects";
      EXPECT_TRUE(root.desc[0].type.has_value() || root.desc[0].color.has_value());
      break;
    }
    case LevelFamily::kPickupAbove: {
      ASSERT_EQ(root.kind, InstrKind::kPickup);
      EXPECT_EQ(movable, 1);
      for (const Cell& o : objs) {
        if (IsMovable(o.obj)) {
          EXPECT_TRUE(InRoomInterior(w, 1, 0, o.pos));
        }
      }
      bool door_up = false;
      for (const Cell& d : doors) {
        door_up = door_up || (OnRoomWall(w, 1, 1, d.pos) && OnRoomWall(w, 1, 0, d.pos));
      }
      EXPECT_TRUE(door_up) << "a door joins the centre room and the room above";
      break;
    }
    case LevelFamily::kPutNextLocal: {
      ASSERT_EQ(root.kind, InstrKind::kPutNext);
      EXPECT_EQ(movable, c.num_objs);
      std::set<std::pair<int, int>> looks;
      for (const Cell& o : objs) looks.insert({int(o.obj.type), int(o.obj.color)});
      EXPECT_EQ(static_cast<int>(looks.size()), c.num_objs) << "distinct objects";
      break;
    }
    case LevelFamily::kPutNext:
    case LevelFamily::kMoveTwoAcross: {
      EXPECT_EQ(movable, 2 * c.num_objs);
      // The wall between the two rooms is open (except its corners).
      const int x = w.rooms.room_size - 1;
      for (int y = 1; y < w.grid.height() - 1; ++y) {
        const Object& o = w.grid.at(x, y);
        EXPECT_TRUE(o.empty() || IsMovable(o)) << "middle wall removed at y=" << y;
      }
      if (c.family == LevelFamily::kMoveTwoAcross) {
        ASSERT_EQ(root.kind, InstrKind::kBefore);
        EXPECT_EQ(in.nodes[root.a].kind, InstrKind::kPutNext);
        EXPECT_EQ(in.nodes[root.b].kind, InstrKind::kPutNext);
        break;
      }
      ASSERT_EQ(root.kind, InstrKind::kPutNext);
      if (c.start_carrying) {
        ASSERT_FALSE(w.carrying.empty()) << "PutNext*Carrying starts carrying";
        EXPECT_EQ(w.carrying.type, *root.desc[0].type);
        EXPECT_EQ(w.carrying.color, *root.desc[0].color);
        if (w.grid.InBounds(w.carrying_pos)) {
          EXPECT_TRUE(w.grid.at(w.carrying_pos).empty()) << "the carried object left the floor";
        }
      } else {
        EXPECT_TRUE(w.carrying.empty());
      }
      break;
    }
    case LevelFamily::kUnlock: {
      ASSERT_EQ(root.kind, InstrKind::kOpen);
      const std::vector<Cell> locked = locked_doors();
      ASSERT_EQ(locked.size(), 1u) << "Unlock: one locked door";
      EXPECT_EQ(root.desc[0].color, locked[0].obj.color);
      const Pos room = LockedRoom(w, locked[0].pos);
      bool key = false;
      for (const Cell& o : objs) {
        key = key || (o.obj.type == ObjectType::kKey && o.obj.color == locked[0].obj.color &&
                      (!ours || !InRoomInterior(w, room.x, room.y, o.pos)));
      }
      EXPECT_TRUE(key) << "Unlock: the key exists (ours: outside the locked room)";
      EXPECT_NE(RoomOf(w, w.agent_pos), room) << "the agent starts outside the locked room";
      EXPECT_EQ(movable, c.num_objs * w.rooms.num_rows * w.rooms.num_cols + 1);
      break;
    }
    case LevelFamily::kUnlockLocal:
    case LevelFamily::kKeyInBox: {
      ASSERT_EQ(root.kind, InstrKind::kOpen);
      EXPECT_EQ(w.mission, "open the door");
      ASSERT_EQ(doors.size(), 1u);
      ASSERT_TRUE(doors[0].obj.is_locked_door());
      EXPECT_TRUE(OnRoomWall(w, 1, 1, doors[0].pos));
      const Color color = doors[0].obj.color;
      if (c.family == LevelFamily::kKeyInBox) {
        EXPECT_EQ(movable, 1);
        const std::vector<Cell> boxes = OfType(w, ObjectType::kBox);
        ASSERT_EQ(boxes.size(), 1u);
        EXPECT_EQ(boxes[0].obj.inner_type, ObjectType::kKey) << "KeyInBox: the key is in a box";
        EXPECT_EQ(boxes[0].obj.inner_color, color);
        EXPECT_TRUE(OfType(w, ObjectType::kKey).empty());
      } else {
        bool key = false;
        for (const Cell& o : objs) {
          key = key || (o.obj.type == ObjectType::kKey && o.obj.color == color &&
                        InRoomInterior(w, 1, 1, o.pos));
        }
        EXPECT_TRUE(key) << "UnlockLocal: the key lies in the room";
        EXPECT_EQ(movable, 1 + (c.distractors ? c.num_objs : 0));
      }
      break;
    }
    case LevelFamily::kUnlockPickup:
    case LevelFamily::kBlockedUnlockPickup: {
      ASSERT_EQ(root.kind, InstrKind::kPickup);
      EXPECT_EQ(root.desc[0].type, ObjectType::kBox);
      ASSERT_EQ(doors.size(), 1u);
      ASSERT_TRUE(doors[0].obj.is_locked_door());
      const Pos d = doors[0].pos;
      EXPECT_EQ(d.x, w.rooms.room_size - 1);
      bool box_right = false, key_left = false;
      for (const Cell& o : objs) {
        box_right = box_right || (o.obj.type == ObjectType::kBox && InRoomInterior(w, 1, 0, o.pos));
        key_left =
            key_left || (o.obj.type == ObjectType::kKey && o.obj.color == doors[0].obj.color &&
                         InRoomInterior(w, 0, 0, o.pos));
      }
      EXPECT_TRUE(box_right);
      EXPECT_TRUE(key_left);
      if (c.family == LevelFamily::kBlockedUnlockPickup) {
        EXPECT_EQ(w.grid.at(d.x - 1, d.y).type, ObjectType::kBall) << "a ball blocks the door";
        EXPECT_EQ(movable, 3);
      } else {
        EXPECT_EQ(movable, 2 + (c.distractors ? c.num_objs : 0));
      }
      break;
    }
    case LevelFamily::kUnlockToUnlock: {
      ASSERT_EQ(root.kind, InstrKind::kPickup);
      EXPECT_EQ(w.mission, "pick up the ball");
      const std::vector<Cell> locked = locked_doors();
      ASSERT_EQ(locked.size(), 2u);
      EXPECT_NE(locked[0].obj.color, locked[1].obj.color);
      EXPECT_EQ(movable, 3);
      EXPECT_EQ(RoomOf(w, w.agent_pos), (Pos{1, 0}));
      break;
    }
    case LevelFamily::kActionObjDoor:
      EXPECT_EQ(doors.size(), 4u);
      EXPECT_EQ(movable, c.num_objs);
      EXPECT_TRUE(locked_doors().empty());
      EXPECT_TRUE(root.kind == InstrKind::kGoTo || root.kind == InstrKind::kOpen ||
                  root.kind == InstrKind::kPickup);
      break;
    case LevelFamily::kFindObj:
      ASSERT_EQ(root.kind, InstrKind::kPickup);
      EXPECT_EQ(movable, 1);
      EXPECT_FALSE(root.desc[0].color.has_value()) << "named by type only";
      EXPECT_EQ(RoomOf(w, w.agent_pos), (Pos{1, 1}));
      break;
    case LevelFamily::kKeyCorridor: {
      ASSERT_EQ(root.kind, InstrKind::kPickup);
      EXPECT_EQ(w.mission, "pick up the ball");
      const std::vector<Cell> locked = locked_doors();
      ASSERT_EQ(locked.size(), 1u);
      EXPECT_EQ(locked[0].pos.x, 2 * (w.rooms.room_size - 1)) << "locked door on column 2";
      const std::vector<Cell> balls = OfType(w, ObjectType::kBall);
      ASSERT_EQ(balls.size(), 1u);
      EXPECT_EQ(RoomOf(w, balls[0].pos).x, 2);
      const std::vector<Cell> keys = OfType(w, ObjectType::kKey);
      ASSERT_EQ(keys.size(), 1u);
      EXPECT_EQ(RoomOf(w, keys[0].pos).x, 0);
      EXPECT_EQ(keys[0].obj.color, locked[0].obj.color);
      break;
    }
    case LevelFamily::kOneRoom:
      ASSERT_EQ(root.kind, InstrKind::kPickup);
      EXPECT_EQ(w.mission, "pick up the ball");
      EXPECT_EQ(objs.size(), 1u);
      break;
    case LevelFamily::kLevelGen: {
      const LevelGenOptions& o = c.gen;
      EXPECT_LE(NumNavs(in), MaxNavs(o));
      if (!o.locations) {
        EXPECT_FALSE(HasLocation(in));
      }
      if (!(o.instr_kinds & kKindSeq)) {
        EXPECT_NE(root.kind, InstrKind::kBefore);
        EXPECT_NE(root.kind, InstrKind::kAfter);
      }
      if (!(o.instr_kinds & kKindAnd) && !(o.instr_kinds & kKindSeq)) {
        EXPECT_TRUE(IsActionKind(root.kind));
      }
      ForEachNode(in, [&](const InstrNode& n) {
        if (!IsActionKind(n.kind)) return;
        const uint8_t bit = n.kind == InstrKind::kGoTo     ? kActGoTo
                            : n.kind == InstrKind::kPickup ? kActPickup
                            : n.kind == InstrKind::kOpen   ? kActOpen
                                                           : kActPutNext;
        EXPECT_TRUE(o.action_kinds & bit) << "action kind not allowed";
      });
      const size_t num_locked = locked_doors().size();
      EXPECT_LE(num_locked, 1u);
      if (o.locked_room_prob == 0.0f) {
        EXPECT_EQ(num_locked, 0u);
      }
      // A locked room brings its key.
      EXPECT_EQ(movable, o.num_dists + static_cast<int>(num_locked));
      if (!o.unblocking) {
        EXPECT_TRUE(AllReachable(w));
      }
      if (o.unblocking) {
        // validate_instrs: no key of a locked door's colour is named.
        for (const Cell& d : locked_doors()) {
          ForEachNode(in, [&](const InstrNode& n) {
            for (int k = 0; k < NumDescs(n); ++k) {
              EXPECT_FALSE(n.desc[k].type == ObjectType::kKey && n.desc[k].color == d.obj.color);
            }
          });
        }
      }
      break;
    }
  }
}

// Checks shared by every level: the text, the named objects, the agent, max_steps, and the
// PutNext validation rules.
void CheckEpisode(const LevelConfig& c, const WorldState& w, const Instr& in,
                  const std::string& where) {
  SCOPED_TRACE(where + " mission \"" + w.mission + "\"");
  // The mission parses and re-surfaces to itself, and parses to the instruction's tree.
  Instr parsed;
  ASSERT_NO_THROW(parsed = ParseMission(w.mission));
  EXPECT_EQ(Surface(parsed), w.mission);
  EXPECT_EQ(WithoutStrict(InstrToJson(parsed)), WithoutStrict(InstrToJson(in)));
  EXPECT_EQ(Surface(in), w.mission);
  // Every description names at least one object.
  ForEachNode(in, [&](const InstrNode& n) {
    for (int k = 0; k < NumDescs(n); ++k) {
      EXPECT_GE(in.ObjSet(n.desc[k]).size(), 1) << "a description matches nothing";
    }
    if (n.kind == InstrKind::kPutNext) {
      for (uint16_t a : in.ObjSet(n.desc[0])) {
        for (uint16_t b : in.ObjSet(n.desc[1])) EXPECT_NE(a, b) << "PutNext sets overlap";
      }
      for (const Pos& a : in.ObjPoss(n.desc[0])) {
        for (const Pos& b : in.ObjPoss(n.desc[1])) {
          EXPECT_NE(std::abs(a.x - b.x) + std::abs(a.y - b.y), 1) << "already next to it";
        }
      }
    }
  });
  // Nothing overlaps the agent.
  ASSERT_TRUE(w.grid.InBounds(w.agent_pos));
  EXPECT_TRUE(w.grid.at(w.agent_pos).can_overlap());
  EXPECT_TRUE(w.grid.at(w.agent_pos).empty());
  EXPECT_GE(w.agent_dir, 0);
  EXPECT_LE(w.agent_dir, 3);
  EXPECT_EQ(w.step_count, 0);
  EXPECT_EQ(w.agent_view_size, 7);
  // Layout and the max_steps rule.
  EXPECT_EQ(w.rooms.room_size, c.layout.room_size);
  EXPECT_EQ(w.rooms.num_rows, c.layout.num_rows);
  EXPECT_EQ(w.rooms.num_cols, c.layout.num_cols);
  EXPECT_EQ(w.grid.width(), (c.layout.room_size - 1) * c.layout.num_cols + 1);
  EXPECT_EQ(w.grid.height(), (c.layout.room_size - 1) * c.layout.num_rows + 1);
  const int area = c.layout.room_size * c.layout.room_size * c.layout.num_rows * c.layout.num_cols;
  EXPECT_EQ(w.max_steps, c.fixed_max_steps > 0 ? c.fixed_max_steps : NumNavs(in) * area);
}

std::vector<std::string> LevelIds() {
  std::vector<std::string> ids;
  for (const LevelInfo& l : AllLevels()) ids.push_back(l.id);
  return ids;
}

std::string TestName(const testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

// The reference's initial states, per level (only the `initial` objects are parsed).
const std::map<std::string, std::vector<json>>& ReferenceInitials() {
  static const std::map<std::string, std::vector<json>> by_level = [] {
    std::map<std::string, std::vector<json>> m;
    std::ifstream in(std::string(SKILLGRID_SHARED_DIR) + "/conformance/babyai_public.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const size_t lv = line.find("\"level\":\"");
      const size_t init = line.find("\"initial\":");
      const size_t obs = line.find(",\"initial_obs\"");
      if (lv == std::string::npos || init == std::string::npos || obs == std::string::npos ||
          obs < init) {
        const json j = json::parse(line);
        m[j.at("level").get<std::string>()].push_back(j.at("initial"));
        continue;
      }
      const size_t lv_end = line.find('"', lv + 9);
      const std::string level = line.substr(lv + 9, lv_end - lv - 9);
      m[level].push_back(json::parse(line.substr(init + 10, obs - init - 10)));
    }
    return m;
  }();
  return by_level;
}

// ---------------------------------------------------------------------------------------------

TEST(LevelTableTest, Has96UniqueIdsMatchingTheReference) {
  const std::vector<LevelInfo>& all = AllLevels();
  EXPECT_EQ(all.size(), 96u);
  std::set<std::string> ids;
  for (const LevelInfo& l : all) {
    EXPECT_TRUE(StartsWith(l.id, "BabyAI-")) << l.id;
    EXPECT_FALSE(l.description.empty()) << l.id;
    EXPECT_EQ(l.description.find('\n'), std::string::npos) << l.id;
    EXPECT_TRUE(ids.insert(l.id).second) << "duplicate " << l.id;
    EXPECT_EQ(GetLevelConfig(l.id).id, l.id);
  }
  EXPECT_EQ(all.front().id, "BabyAI-GoToRedBallGrey-v0");
  EXPECT_EQ(all.back().id, "BabyAI-BossLevelNoUnlock-v0");
  EXPECT_TRUE(ids.count("BabyAI-GoToObjS6-v1"));
  EXPECT_TRUE(ids.count("BabyAI-GoToOpen-v0"));
  EXPECT_FALSE(ids.count("BabyAI-GoToObjS6-v0"));
  EXPECT_FALSE(ids.count("BabyAI-PutNext-v0"));
  const auto& ref = ReferenceInitials();
  if (ref.empty()) GTEST_SKIP() << "no conformance traces";
  std::set<std::string> ref_ids;
  for (const auto& kv : ref) ref_ids.insert(kv.first);
  EXPECT_EQ(ids, ref_ids) << "the reference traces cover exactly the registered ids";
}

TEST(LevelTableTest, UnknownIdListsClosestIds) {
  try {
    MakeLevel("BabyAI-GoToLocl-v0");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("unknown level 'BabyAI-GoToLocl-v0'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("did you mean BabyAI-GoToLocal-v0"), std::string::npos) << msg;
  }
  try {
    BabyAIEnv env("bosslevel");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("BabyAI-BossLevel-v0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(GetLevelConfig(""), InputError);
}

TEST(LevelTableTest, BadConfigsAreInputErrors) {
  LevelConfig c = GetLevelConfig("BabyAI-GoToDoor-v0");
  c.layout = {7, 1, 1};
  EXPECT_THROW(MakeLevel(c), InputError);
  c = GetLevelConfig("BabyAI-PutNextS5N2-v0");
  c.num_objs = 10;
  EXPECT_THROW(MakeLevel(c), InputError);
  c = GetLevelConfig("BabyAI-GoToLocal-v0");
  c.layout.room_size = 2;
  EXPECT_THROW(MakeLevel(c), InputError);
  c = GetLevelConfig("BabyAI-BossLevel-v0");
  c.gen.action_kinds = 0;
  EXPECT_THROW(MakeLevel(c), InputError);
  c = GetLevelConfig("BabyAI-GoToLocal-v0");
  c.num_objs = 40;  // more than the 8x8 room can hold
  EXPECT_THROW(MakeLevel(c), InputError);
}

TEST(LevelTableTest, EditedConfigBuildsAVariant) {
  LevelConfig c = GetLevelConfig("BabyAI-GoToLocal-v0");
  c.id = "GoToLocalS10N12";
  c.layout.room_size = 10;
  c.num_objs = 12;
  BabyAIEnv env(MakeLevel(c));
  for (int s = 0; s < 20; ++s) {
    env.Reset(s);
    EXPECT_EQ(env.world().grid.width(), 10);
    EXPECT_EQ(CountMovable(env.world()), 12);
    EXPECT_EQ(env.world().max_steps, 100);
    EXPECT_EQ(env.level().id(), "GoToLocalS10N12");
  }
}

class LevelEpisodeTest : public testing::TestWithParam<std::string> {};

// Over 100 seeds: the shared checks, the level's structure, determinism, variety, and that the
// in-place generation is exactly Episode::Start's state.
TEST_P(LevelEpisodeTest, HundredSeeds) {
  const LevelConfig& c = GetLevelConfig(GetParam());
  BabyAIEnv env(GetParam());
  BabyAIEnv other(GetParam());
  EXPECT_EQ(env.level().id(), GetParam());
  std::set<std::string> distinct;
  for (int seed = 0; seed < kSeeds; ++seed) {
    env.Reset(seed);
    const WorldState& w = env.world();
    const Instr& in = env.episode().instr();
    const std::string where = GetParam() + " seed " + std::to_string(seed);
    CheckEpisode(c, w, in, where);
    CheckStructure(c, w, in, where, /*ours=*/true);
    if (HasFailure()) return;
    const std::string dump = WorldToJson(w).dump() + InstrToJson(in).dump();
    distinct.insert(dump);
    // Same seed -> same episode, whatever the env did before.
    other.Reset(seed * 7919 + 13);
    other.Reset(seed);
    EXPECT_EQ(WorldToJson(other.world()).dump() + InstrToJson(other.episode().instr()).dump(), dump)
        << where;
    // The instruction is exactly as ResetVerifier leaves it.
    Instr fresh = in;
    ResetVerifier(fresh, w);
    for (int i = 0; i < in.num_nodes; ++i) {
      for (int k = 0; k < NumDescs(in.nodes[i]); ++k) {
        const ObjDesc& a = in.nodes[i].desc[k];
        const ObjDesc& b = fresh.nodes[i].desc[k];
        std::vector<uint16_t> sa(in.ObjSet(a).begin(), in.ObjSet(a).end());
        std::vector<uint16_t> sb(fresh.ObjSet(b).begin(), fresh.ObjSet(b).end());
        std::sort(sa.begin(), sa.end());
        std::sort(sb.begin(), sb.end());
        EXPECT_EQ(sa, sb) << where;
        EXPECT_EQ(a.definite, b.definite) << where;
        EXPECT_EQ(in.ObjPoss(a).size(), fresh.ObjPoss(b).size()) << where;
      }
    }
  }
  // Different seeds give different episodes (tiny levels can repeat a few).
  EXPECT_GE(static_cast<int>(distinct.size()), kSeeds / 3) << GetParam();
}

// Stepping a generated episode gives the same results as Episode::Start on a copy of it.
TEST_P(LevelEpisodeTest, InPlaceResetStepsLikeEpisodeStart) {
  BabyAIEnv env(GetParam());
  Rng actions(99);
  for (int seed = 0; seed < 5; ++seed) {
    env.Reset(seed);
    Episode copy;
    copy.Start(env.world(), env.episode().instr());
    for (int t = 0; t < 60; ++t) {
      const Action a = static_cast<Action>(actions.Int(0, kNumActions));
      const StepResult r1 = env.Step(a);
      const StepResult r2 = copy.Step(a);
      ASSERT_EQ(r1.status, r2.status) << GetParam() << " seed " << seed << " step " << t;
      ASSERT_EQ(r1.reward, r2.reward);
      ASSERT_EQ(r1.terminated, r2.terminated);
      ASSERT_EQ(r1.truncated, r2.truncated);
      if (r1.terminated || r1.truncated) break;
    }
  }
}

// The reference's episodes of this level: same grid size, rooms and max_steps rule as ours,
// and the same structure (CheckStructure) holds for them.
TEST_P(LevelEpisodeTest, AgreesWithReferenceEpisodes) {
  const auto& ref = ReferenceInitials();
  if (ref.empty()) GTEST_SKIP() << "no conformance traces";
  const auto it = ref.find(GetParam());
  ASSERT_NE(it, ref.end()) << "no reference episode of " << GetParam();
  const LevelConfig& c = GetLevelConfig(GetParam());
  BabyAIEnv env(GetParam());
  env.Reset(0);
  const WorldState& ours = env.world();
  std::set<int> ours_max;
  for (int seed = 0; seed < kSeeds; ++seed) {
    env.Reset(seed);
    ours_max.insert(env.world().max_steps);
  }
  const int area = c.layout.room_size * c.layout.room_size * c.layout.num_rows * c.layout.num_cols;
  int n = 0;
  for (const json& initial : it->second) {
    const std::string where = GetParam() + " reference #" + std::to_string(n++);
    EpisodeState s = EpisodeStateFromJson(initial);
    ResetVerifier(s.instr, s.world);
    const WorldState& w = s.world;
    EXPECT_EQ(w.grid.width(), ours.grid.width()) << where;
    EXPECT_EQ(w.grid.height(), ours.grid.height()) << where;
    EXPECT_EQ(w.rooms.room_size, ours.rooms.room_size) << where;
    EXPECT_EQ(w.rooms.num_rows, ours.rooms.num_rows) << where;
    EXPECT_EQ(w.rooms.num_cols, ours.rooms.num_cols) << where;
    const int rule = c.fixed_max_steps > 0 ? c.fixed_max_steps : NumNavs(s.instr) * area;
    EXPECT_EQ(w.max_steps, rule) << where << " (" << (c.fixed_max_steps > 0 ? "fixed" : "formula")
                                 << ")";
    if (c.family != LevelFamily::kLevelGen && c.family != LevelFamily::kOpenDoorsOrder) {
      // One instruction shape: the value is the same in every episode, ours included.
      EXPECT_EQ(ours_max, std::set<int>{w.max_steps}) << where;
    } else if (c.family == LevelFamily::kLevelGen) {
      EXPECT_GE(w.max_steps, area) << where;
      EXPECT_LE(w.max_steps, MaxNavs(c.gen) * area) << where;
    }
    CheckEpisode(c, w, s.instr, where);
    CheckStructure(c, w, s.instr, where, /*ours=*/false);
  }
  for (int m : ours_max) {
    EXPECT_GE(m, c.fixed_max_steps > 0 ? c.fixed_max_steps : area);
    EXPECT_LE(m, c.fixed_max_steps > 0
                     ? c.fixed_max_steps
                     : (c.family == LevelFamily::kLevelGen ? MaxNavs(c.gen) : 2) * area);
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, LevelEpisodeTest, testing::ValuesIn(LevelIds()), TestName);

TEST(LevelEnvTest, ResetWithoutSeedContinuesTheStream) {
  BabyAIEnv a("BabyAI-BossLevel-v0"), b("BabyAI-BossLevel-v0");
  a.Reset(42);
  b.Reset(42);
  for (int i = 0; i < 10; ++i) {
    a.Reset();
    b.Reset();
    EXPECT_EQ(a.world().mission, b.world().mission);
    EXPECT_EQ(WorldToJson(a.world()), WorldToJson(b.world()));
  }
  a.Reset(42);
  b.Reset(43);
  EXPECT_NE(WorldToJson(a.world()), WorldToJson(b.world()));
}

TEST(LevelEnvTest, PaperSuiteShapes) {
  // GoTo is 3x3 rooms of size 8: a 22x22 grid.
  BabyAIEnv go_to("BabyAI-GoTo-v0");
  go_to.Reset(1);
  EXPECT_EQ(go_to.world().grid.width(), 22);
  EXPECT_EQ(go_to.world().grid.height(), 22);
  EXPECT_EQ(go_to.world().max_steps, 576);
  // GoToObj: one object in an 8x8 room.
  BabyAIEnv obj("BabyAI-GoToObj-v0");
  obj.Reset(1);
  EXPECT_EQ(obj.world().grid.width(), 8);
  EXPECT_EQ(Objects(obj.world()).size(), 1u);
  // PutNextLocal: two navigations of an 8x8 room.
  BabyAIEnv put("BabyAI-PutNextLocal-v0");
  put.Reset(1);
  EXPECT_EQ(put.world().max_steps, 128);
}

TEST(LevelEnvTest, LevelGenUsesEveryInstructionShape) {
  // Over many BossLevel episodes every action verb and every connective appears.
  BabyAIEnv env("BabyAI-BossLevel-v0");
  std::set<int> kinds;
  int with_loc = 0, locked = 0;
  for (int seed = 0; seed < 200; ++seed) {
    env.Reset(seed);
    ForEachNode(env.episode().instr(), [&](const InstrNode& n) { kinds.insert(int(n.kind)); });
    with_loc += HasLocation(env.episode().instr());
    for (const Cell& d : OfType(env.world(), ObjectType::kDoor)) locked += d.obj.is_locked_door();
  }
  EXPECT_EQ(kinds.size(), 7u);
  EXPECT_GT(with_loc, 20);
  EXPECT_GT(locked, 50);  // locked_room_prob 0.5
  EXPECT_LT(locked, 150);
}

TEST(LevelGenTest, DescMatchesAtAgreesWithFindMatchingObjs) {
  // LevelGen's rand_obj tests descriptions with DescMatchesAt; it must count exactly the
  // objects find_matching_objs (instr.cpp) finds, locations included.
  BabyAIEnv env("BabyAI-SynthSeq-v0");
  Rng rng(3);
  std::vector<uint16_t> ids;
  std::vector<Pos> poss;
  int matched = 0;
  for (int seed = 0; seed < 100; ++seed) {
    env.Reset(seed);
    const WorldState& w = env.world();
    for (int t = 0; t < 40; ++t) {
      ObjDesc d;
      const int type = rng.Int(0, 5);
      if (type < 4)
        d.type = std::array<ObjectType, 4>{ObjectType::kBox, ObjectType::kBall, ObjectType::kKey,
                                           ObjectType::kDoor}[type];
      const int color = rng.Int(0, 7);
      if (color < 6) d.color = static_cast<Color>(color);
      d.loc = static_cast<DescLoc>(rng.Int(0, 5));
      FindMatchingObjs(d, w, &ids, &poss);
      std::set<std::pair<int, int>> expected;
      for (const Pos& p : poss) expected.insert({p.x, p.y});
      std::set<std::pair<int, int>> got;
      for (int y = 0; y < w.grid.height(); ++y) {
        for (int x = 0; x < w.grid.width(); ++x) {
          if (DescMatchesAt(d, w, {x, y})) got.insert({x, y});
        }
      }
      EXPECT_EQ(got, expected) << "seed " << seed << " desc type " << type << " colour " << color
                               << " loc " << static_cast<int>(d.loc);
      matched += !got.empty();
    }
  }
  EXPECT_GT(matched, 500);
}

}  // namespace
}  // namespace skillgrid::envs
