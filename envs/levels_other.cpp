// Other levels (minigrid/envs/babyai/other.py): ActionObjDoor, FindObjS*, KeyCorridor*,
// OneRoomS*. MoveTwoAcross lives with the PutNext levels (levels_putnext_unlock.cpp).
#include "envs/levels_internal.h"

namespace skillgrid::envs {
namespace {

constexpr int kRandom = RoomGrid::kRandom;

// ActionObjDoor: num_objs distinct objects and four unlocked doors in the centre room; go to or
// open a door, or go to or pick up an object.
class ActionObjDoorLevel final : public RoomGridLevel {
 public:
  explicit ActionObjDoorLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_rows >= 3 && c.layout.num_cols >= 3, c, "needs 3x3 rooms");
    RequireConfig(c.num_objs <= 18, c, "at most 18 distinct objects");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    Rng& rng = rg.rng();
    const int n = config_.num_objs;
    Pos objs[kMaxLevelObjects + 4];
    rg.AddDistractors(1, 1, n, true, objs);
    for (int k = 0; k < 4; ++k) objs[n + k] = rg.AddDoor(1, 1, kRandom, std::nullopt, false);
    rg.PlaceAgent(1, 1);
    const Pos t = objs[RandIndex(rng, n + 4)];
    const ObjDesc desc = DescOf(rg.world(), t);
    const bool go = rng.Bool();
    if (go) {
      AssignInstr(instr, MakeGoTo(desc));
    } else if (desc.type == ObjectType::kDoor) {
      AssignInstr(instr, MakeOpen(desc));
    } else {
      AssignInstr(instr, MakePickup(desc));
    }
    return true;
  }
};

// FindObjS*: one random object in a random room, the agent in room (1, 1), rooms connected;
// pick it up, named by type only. (Upstream draws the room's column from range(num_rows) and
// its row from range(num_cols); the registered 3x3 layouts make that the same thing.)
class FindObjLevel final : public RoomGridLevel {
 public:
  explicit FindObjLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_rows >= 2 && c.layout.num_cols >= 2, c, "needs 2x2 rooms or more");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    Rng& rng = rg.rng();
    const int col = RandIndex(rng, rg.num_cols());
    const int row = RandIndex(rng, rg.num_rows());
    const Pos obj = rg.AddObject(col, row);
    rg.PlaceAgent(1, 1);
    rg.ConnectAll();
    AssignInstr(instr, MakePickup(MakeDesc(rg.world().grid.at(obj).type, std::nullopt)));
    return true;
  }
};

// KeyCorridor*: the middle column of rooms joined into a corridor; a ball behind a locked door
// in a random room of the right column; its key in a random room of the left column; the agent
// in the middle of the corridor; all rooms connected.
class KeyCorridorLevel final : public RoomGridLevel {
 public:
  explicit KeyCorridorLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_cols == 3, c, "needs three columns of rooms");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    Rng& rng = rg.rng();
    const int rows = rg.num_rows();
    for (int j = 1; j < rows; ++j) rg.RemoveWall(1, j, kSideUp);
    const int room = RandIndex(rng, rows);
    const Pos door = rg.AddDoor(2, room, kSideLeft, std::nullopt, true);
    rg.AddObject(2, room, ObjectType::kBall);
    rg.AddObject(0, RandIndex(rng, rows), ObjectType::kKey, rg.world().grid.at(door).color);
    rg.PlaceAgent(1, rows / 2);
    rg.ConnectAll();
    AssignInstr(instr, MakePickup(MakeDesc(ObjectType::kBall, std::nullopt)));
    return true;
  }
};

// OneRoomS*: a ball of a random colour in one room; "pick up the ball".
class OneRoomLevel final : public RoomGridLevel {
 public:
  using RoomGridLevel::RoomGridLevel;

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    rg.AddObject(0, 0, ObjectType::kBall);
    rg.PlaceAgent();
    AssignInstr(instr, MakePickup(MakeDesc(ObjectType::kBall, std::nullopt)));
    return true;
  }
};

}  // namespace

std::unique_ptr<Level> MakeOtherFamilyLevel(const LevelConfig& c) {
  switch (c.family) {
    case LevelFamily::kActionObjDoor:
      return std::make_unique<ActionObjDoorLevel>(c);
    case LevelFamily::kFindObj:
      return std::make_unique<FindObjLevel>(c);
    case LevelFamily::kKeyCorridor:
      return std::make_unique<KeyCorridorLevel>(c);
    case LevelFamily::kOneRoom:
      return std::make_unique<OneRoomLevel>(c);
    default:
      return nullptr;
  }
}

}  // namespace skillgrid::envs
