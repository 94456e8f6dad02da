// Open and Pickup levels (minigrid/envs/babyai/open.py, pickup.py): Open, OpenRedDoor,
// OpenDoor*, OpenTwoDoors / OpenRedBlueDoors*, OpenDoorsOrder*, Pickup, UnblockPickup,
// PickupDist*, PickupAbove. PickupLoc is a LevelGen (levels_gen.cpp).
#include "envs/levels_internal.h"

namespace skillgrid::envs {
namespace {

constexpr int kRandom = RoomGrid::kRandom;

// Open: connected maze with num_objs objects (all reachable); open a random door, by colour.
class OpenLevel final : public RoomGridLevel {
 public:
  explicit OpenLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_rows * c.layout.num_cols >= 2, c, "needs at least two rooms");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    rg.PlaceAgent();
    rg.ConnectAll();
    Pos d[kMaxLevelObjects];
    rg.AddDistractors(kRandom, kRandom, config_.num_objs, false, d);
    if (!rg.CheckObjsReachable()) return false;
    // Every door is listed once per room it borders, so the draw is uniform over doors.
    Pos doors[4 * RoomGrid::kMaxRooms];
    const int n = rg.CollectDoors(doors, 4 * RoomGrid::kMaxRooms);
    const Pos t = doors[RandIndex(rg.rng(), n)];
    AssignInstr(instr, MakeOpen(MakeDesc(ObjectType::kDoor, rg.world().grid.at(t).color)));
    return true;
  }
};

// OpenRedDoor: a red unlocked door on the right wall of room (0, 0); the agent in that room.
class OpenRedDoorLevel final : public RoomGridLevel {
 public:
  explicit OpenRedDoorLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_cols >= 2, c, "needs two columns of rooms");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    rg.AddDoor(0, 0, kSideRight, Color::kRed, false);
    rg.PlaceAgent(0, 0);
    AssignInstr(instr, MakeOpen(MakeDesc(ObjectType::kDoor, Color::kRed)));
    return true;
  }
};

// OpenDoor*: four unlocked doors of distinct colours on the centre room, one per side (right
// first). Colour selection names the first door (the right one, upstream); location selection
// names "a/the door <loc>" relative to the start pose.
class OpenDoorLevel final : public RoomGridLevel {
 public:
  explicit OpenDoorLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_rows >= 3 && c.layout.num_cols >= 3, c, "needs 3x3 rooms");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    Rng& rng = rg.rng();
    Color colors[kNumColors];
    for (int i = 0; i < kNumColors; ++i) colors[i] = kColorsByName[i];
    RandSubset(rng, colors, kNumColors, 4);
    for (int k = 0; k < 4; ++k) rg.AddDoor(1, 1, k, colors[k], false);
    SelectBy by = config_.select_by;
    if (by == SelectBy::kRandom) by = RandIndex(rng, 2) == 0 ? SelectBy::kColor : SelectBy::kLoc;
    const ObjDesc desc = by == SelectBy::kColor ? MakeDesc(ObjectType::kDoor, colors[0])
                                                : MakeDesc(ObjectType::kDoor, std::nullopt,
                                                           kLocNames[RandIndex(rng, 4)]);
    rg.PlaceAgent(1, 1);
    AssignInstr(instr, MakeOpen(desc, config_.strict));
    return true;
  }
};

// OpenTwoDoors / OpenRedBlueDoors*: doors on the left and right walls of the centre room;
// open the left one, then the right one (strict applies to the first Open only, upstream).
class OpenTwoDoorsLevel final : public RoomGridLevel {
 public:
  explicit OpenTwoDoorsLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_rows >= 3 && c.layout.num_cols >= 3, c, "needs 3x3 rooms");
    RequireConfig(!c.first_color || !c.second_color || *c.first_color != *c.second_color, c,
                  "the two doors need different colours");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    Color colors[kNumColors];
    for (int i = 0; i < kNumColors; ++i) colors[i] = kColorsByName[i];
    RandSubset(rg.rng(), colors, kNumColors, 2);
    const Color first = config_.first_color.value_or(colors[0]);
    const Color second = config_.second_color.value_or(colors[1]);
    rg.AddDoor(1, 1, kSideLeft, first, false);
    rg.AddDoor(1, 1, kSideRight, second, false);
    rg.PlaceAgent(1, 1);
    AssignInstr(instr, MakeBefore(MakeOpen(MakeDesc(ObjectType::kDoor, first), config_.strict),
                                  MakeOpen(MakeDesc(ObjectType::kDoor, second))));
    return true;
  }
};

// OpenDoorsOrder*: num_objs doors of distinct colours on random sides of the centre room;
// open one, or two in the order given (", then" or "after you").
class OpenDoorsOrderLevel final : public RoomGridLevel {
 public:
  explicit OpenDoorsOrderLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_rows >= 3 && c.layout.num_cols >= 3, c, "needs 3x3 rooms");
    RequireConfig(c.num_objs >= 2 && c.num_objs <= 4, c, "needs 2 to 4 doors");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    Rng& rng = rg.rng();
    const int n = config_.num_objs;
    Color colors[kNumColors];
    for (int i = 0; i < kNumColors; ++i) colors[i] = kColorsByName[i];
    RandSubset(rng, colors, kNumColors, n);
    for (int i = 0; i < n; ++i) rg.AddDoor(1, 1, kRandom, colors[i], false);
    rg.PlaceAgent(1, 1);
    int pick[4] = {0, 1, 2, 3};
    RandSubset(rng, pick, n, 2);
    const ObjDesc d1 = MakeDesc(ObjectType::kDoor, colors[pick[0]]);
    const ObjDesc d2 = MakeDesc(ObjectType::kDoor, colors[pick[1]]);
    const bool strict = config_.strict;
    switch (rng.Int(0, 3)) {
      case 0:
        AssignInstr(instr, MakeOpen(d1, strict));
        break;
      case 1:
        AssignInstr(instr, MakeBefore(MakeOpen(d1, strict), MakeOpen(d2, strict)));
        break;
      default:
        AssignInstr(instr, MakeAfter(MakeOpen(d1, strict), MakeOpen(d2, strict)));
        break;
    }
    return true;
  }
};

// Pickup / UnblockPickup: connected maze with num_objs objects; pick one up. Pickup needs
// every object reachable; UnblockPickup rejects layouts where they all are.
class PickupLevel final : public RoomGridLevel {
 public:
  explicit PickupLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.num_objs >= 1, c, "needs at least one object");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    rg.PlaceAgent();
    rg.ConnectAll();
    Pos d[kMaxLevelObjects];
    rg.AddDistractors(kRandom, kRandom, config_.num_objs, false, d);
    const bool reachable = rg.CheckObjsReachable();
    if (reachable == (config_.family == LevelFamily::kUnblockPickup)) return false;
    const Pos t = d[RandIndex(rg.rng(), config_.num_objs)];
    AssignInstr(instr, MakePickup(DescOf(rg.world(), t)));
    return true;
  }
};

// PickupDist*: num_objs distinct objects in one room; pick one up, named by type, colour or
// both (a colour alone reads "the red object").
class PickupDistLevel final : public RoomGridLevel {
 public:
  explicit PickupDistLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.num_objs >= 1 && c.num_objs <= 18, c, "needs 1 to 18 distinct objects");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    Rng& rng = rg.rng();
    Pos d[kMaxLevelObjects];
    rg.AddDistractors(kRandom, kRandom, config_.num_objs, true, d);
    rg.PlaceAgent(0, 0);
    const Object& o = rg.world().grid.at(d[RandIndex(rng, config_.num_objs)]);
    const int by = RandIndex(rng, 3);  // "type", "color", "both"
    ObjDesc desc = MakeDesc(o.type, o.color);
    if (by == 0) desc.color = std::nullopt;
    if (by == 1) desc.type = std::nullopt;
    AssignInstr(instr, MakePickup(desc, config_.strict));
    return true;
  }
};

// PickupAbove: an object in the top-middle room (1, 0), an unlocked door between it and the
// centre room, the agent in the centre room, the rest connected.
class PickupAboveLevel final : public RoomGridLevel {
 public:
  explicit PickupAboveLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_rows >= 2 && c.layout.num_cols >= 2, c, "needs 2x2 rooms or more");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    const Pos obj = rg.AddObject(1, 0);
    rg.AddDoor(1, 1, kSideUp, std::nullopt, false);
    rg.PlaceAgent(1, 1);
    rg.ConnectAll();
    AssignInstr(instr, MakePickup(DescOf(rg.world(), obj)));
    return true;
  }
};

}  // namespace

std::unique_ptr<Level> MakeOpenPickupFamilyLevel(const LevelConfig& c) {
  switch (c.family) {
    case LevelFamily::kOpen:
      return std::make_unique<OpenLevel>(c);
    case LevelFamily::kOpenRedDoor:
      return std::make_unique<OpenRedDoorLevel>(c);
    case LevelFamily::kOpenDoor:
      return std::make_unique<OpenDoorLevel>(c);
    case LevelFamily::kOpenTwoDoors:
      return std::make_unique<OpenTwoDoorsLevel>(c);
    case LevelFamily::kOpenDoorsOrder:
      return std::make_unique<OpenDoorsOrderLevel>(c);
    case LevelFamily::kPickup:
    case LevelFamily::kUnblockPickup:
      return std::make_unique<PickupLevel>(c);
    case LevelFamily::kPickupDist:
      return std::make_unique<PickupDistLevel>(c);
    case LevelFamily::kPickupAbove:
      return std::make_unique<PickupAboveLevel>(c);
    default:
      return nullptr;
  }
}

}  // namespace skillgrid::envs
