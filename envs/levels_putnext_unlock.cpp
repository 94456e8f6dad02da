// PutNext and Unlock levels (minigrid/envs/babyai/putnext.py, unlock.py, and MoveTwoAcross from
// other.py): PutNextLocal*, PutNextS*N* (and *Carrying), MoveTwoAcross*, Unlock, UnlockLocal*,
// KeyInBox, UnlockPickup*, BlockedUnlockPickup, UnlockToUnlock.
#include <utility>

#include "envs/levels_internal.h"

namespace skillgrid::envs {
namespace {

constexpr int kRandom = RoomGrid::kRandom;

// PutNextLocal*: num_objs distinct objects in one room, all reachable; put one next to another.
class PutNextLocalLevel final : public RoomGridLevel {
 public:
  explicit PutNextLocalLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.num_objs >= 2 && c.num_objs <= 18, c, "needs 2 to 18 distinct objects");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    rg.PlaceAgent();
    Pos d[kMaxLevelObjects];
    rg.AddDistractors(kRandom, kRandom, config_.num_objs, true, d);
    if (!rg.CheckObjsReachable()) return false;
    RandSubset(rg.rng(), d, config_.num_objs, 2);
    AssignInstr(instr, MakePutNext(DescOf(rg.world(), d[0]), DescOf(rg.world(), d[1])));
    return true;
  }
};

// PutNextS*N*: num_objs distinct objects in each of two rooms, the wall between them removed;
// put an object of one room next to one of the other (which is moved: a coin flip). With
// start_carrying, the agent starts holding the object to move (moved after generation).
class PutNextLevel final : public RoomGridLevel {
 public:
  explicit PutNextLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_cols >= 2 && c.layout.room_size >= 4, c,
                  "needs two columns of rooms of size >= 4");
    RequireConfig(c.num_objs >= 1 && c.num_objs <= 9, c, "needs 1 to 9 objects per room");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras* extras) const override {
    Rng& rng = rg.rng();
    const int n = config_.num_objs;
    rg.PlaceAgent(0, 0);
    Pos left[kMaxLevelObjects], right[kMaxLevelObjects];
    rg.AddDistractors(0, 0, n, true, left);
    rg.AddDistractors(1, 0, n, true, right);
    rg.RemoveWall(0, 0, kSideRight);
    Pos a = left[RandIndex(rng, n)];
    Pos b = right[RandIndex(rng, n)];
    if (RandIndex(rng, 2) == 0) std::swap(a, b);
    AssignInstr(instr, MakePutNext(DescOf(rg.world(), a), DescOf(rg.world(), b)));
    if (config_.start_carrying) extras->carry_from = a;
    return true;
  }
};

// MoveTwoAcross*: as PutNext with num_objs objects per room; two moves across the opening:
// "put A next to B, then put C next to D" with A, D on the left and B, C on the right.
class MoveTwoAcrossLevel final : public RoomGridLevel {
 public:
  explicit MoveTwoAcrossLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_cols >= 2, c, "needs two columns of rooms");
    RequireConfig(c.num_objs >= 2 && c.num_objs <= 9, c, "needs 2 to 9 objects per room");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    Rng& rng = rg.rng();
    const int n = config_.num_objs;
    const WorldState& w = rg.world();
    rg.PlaceAgent(0, 0);
    Pos left[kMaxLevelObjects], right[kMaxLevelObjects];
    rg.AddDistractors(0, 0, n, true, left);
    rg.AddDistractors(1, 0, n, true, right);
    rg.RemoveWall(0, 0, kSideRight);
    RandSubset(rng, left, n, 2);
    RandSubset(rng, right, n, 2);
    AssignInstr(instr, MakeBefore(MakePutNext(DescOf(w, left[0]), DescOf(w, right[0])),
                                  MakePutNext(DescOf(w, right[1]), DescOf(w, left[1]))));
    return true;
  }
};

// Unlock: a locked room with one locked door, its key in another room; half the time no other
// door shares the locked door's colour. num_objs distractors in every room, the agent outside
// the locked room, everything reachable (locked doors count as passable).
//
// Quirk decision (numpy ints), as GoToImpUnlock: Minigrid 3.1 also fills the locked room with
// distractors (its `i is not id` test is always true for numpy indices; the reference episodes
// hold 28 objects), which we reproduce; its key-room test can put the key inside the locked
// room (an unsolvable episode), which we do not: the key goes to another room.
class UnlockLevel final : public RoomGridLevel {
 public:
  explicit UnlockLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_rows * c.layout.num_cols >= 2, c, "needs at least two rooms");
    RequireConfig(c.num_objs * c.layout.num_rows * c.layout.num_cols + 2 <= RoomGrid::kMaxObjects,
                  c, "too many objects per room");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    Rng& rng = rg.rng();
    const int cols = rg.num_cols(), rows = rg.num_rows();
    const LockedRoom lr = AddLockedRoomAndKey(rg);
    const Pos locked = lr.room;
    const Color color = lr.color;
    if (rng.Bool()) {
      Color others[kNumColors];
      int n = 0;
      for (Color c : kColorsByName) {
        if (c != color) others[n++] = c;
      }
      rg.ConnectAll(others, n);
    } else {
      rg.ConnectAll();
    }
    Pos d[kMaxLevelObjects];
    for (int i = 0; i < cols; ++i) {
      for (int j = 0; j < rows; ++j) rg.AddDistractors(i, j, config_.num_objs, false, d);
    }
    PlaceAgentOutside(rg, locked);
    if (!rg.CheckObjsReachable()) return false;
    AssignInstr(instr, MakeOpen(MakeDesc(ObjectType::kDoor, color)));
    return true;
  }
};

// UnlockLocal*: a locked door on a random side of the centre room, its key (and, with
// `distractors`, num_objs distinct objects) in the room; "open the door".
class UnlockLocalLevel final : public RoomGridLevel {
 public:
  explicit UnlockLocalLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_rows >= 3 && c.layout.num_cols >= 3, c, "needs 3x3 rooms");
    RequireConfig(c.num_objs <= 17, c, "at most 17 distinct distractors");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    const Pos door = rg.AddDoor(1, 1, kRandom, std::nullopt, true);
    rg.AddObject(1, 1, ObjectType::kKey, rg.world().grid.at(door).color);
    if (config_.distractors) {
      Pos d[kMaxLevelObjects];
      rg.AddDistractors(1, 1, config_.num_objs, true, d);
    }
    rg.PlaceAgent(1, 1);
    AssignInstr(instr, MakeOpen(MakeDesc(ObjectType::kDoor, std::nullopt)));
    return true;
  }
};

// KeyInBox: a locked door on a random side of the centre room; its key inside a box of a
// random colour in the room; "open the door".
class KeyInBoxLevel final : public RoomGridLevel {
 public:
  explicit KeyInBoxLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_rows >= 3 && c.layout.num_cols >= 3, c, "needs 3x3 rooms");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    const Pos door = rg.AddDoor(1, 1, kRandom, std::nullopt, true);
    Object box = MakeObject(ObjectType::kBox, RandColor(rg.rng()));
    box.inner_type = ObjectType::kKey;
    box.inner_color = rg.world().grid.at(door).color;
    rg.PlaceInRoom(1, 1, box);
    rg.PlaceAgent(1, 1);
    AssignInstr(instr, MakeOpen(MakeDesc(ObjectType::kDoor, std::nullopt)));
    return true;
  }
};

// UnlockPickup*: a box in room (1, 0), a locked door between the two rooms, its key (and,
// with `distractors`, num_objs distinct objects anywhere) and the agent in room (0, 0).
class UnlockPickupLevel final : public RoomGridLevel {
 public:
  explicit UnlockPickupLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_cols >= 2, c, "needs two columns of rooms");
    RequireConfig(c.num_objs <= 16, c, "at most 16 distinct distractors");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    const Pos box = rg.AddObject(1, 0, ObjectType::kBox);
    const Pos door = rg.AddDoor(0, 0, kSideRight, std::nullopt, true);
    rg.AddObject(0, 0, ObjectType::kKey, rg.world().grid.at(door).color);
    if (config_.distractors) {
      Pos d[kMaxLevelObjects];
      rg.AddDistractors(kRandom, kRandom, config_.num_objs, true, d);
    }
    rg.PlaceAgent(0, 0);
    AssignInstr(instr, MakePickup(DescOf(rg.world(), box)));
    return true;
  }
};

// BlockedUnlockPickup: as UnlockPickup, plus a ball of a random colour right in front of the
// locked door (written straight into the grid, as upstream) so it must be moved first.
class BlockedUnlockPickupLevel final : public RoomGridLevel {
 public:
  explicit BlockedUnlockPickupLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_cols >= 2, c, "needs two columns of rooms");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    rg.AddObject(1, 0, ObjectType::kBox);
    const Pos door = rg.AddDoor(0, 0, kSideRight, std::nullopt, true);
    rg.Place({door.x - 1, door.y}, MakeObject(ObjectType::kBall, RandColor(rg.rng())));
    rg.AddObject(0, 0, ObjectType::kKey, rg.world().grid.at(door).color);
    rg.PlaceAgent(0, 0);
    AssignInstr(instr, MakePickup(MakeDesc(ObjectType::kBox, std::nullopt)));
    return true;
  }
};

// UnlockToUnlock: three rooms in a row; door A (left-middle) and door B (middle-right) locked
// with distinct colours; key A in the right room, key B in the middle room with the agent, a
// ball in the left room.
class UnlockToUnlockLevel final : public RoomGridLevel {
 public:
  explicit UnlockToUnlockLevel(const LevelConfig& c) : RoomGridLevel(c) {
    RequireConfig(c.layout.num_cols >= 3, c, "needs three columns of rooms");
  }

 protected:
  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    Color colors[kNumColors];
    for (int i = 0; i < kNumColors; ++i) colors[i] = kColorsByName[i];
    RandSubset(rg.rng(), colors, kNumColors, 2);
    rg.AddDoor(0, 0, kSideRight, colors[0], true);
    rg.AddObject(2, 0, ObjectType::kKey, colors[0]);
    rg.AddDoor(1, 0, kSideRight, colors[1], true);
    rg.AddObject(1, 0, ObjectType::kKey, colors[1]);
    rg.AddObject(0, 0, ObjectType::kBall);
    rg.PlaceAgent(1, 0);
    AssignInstr(instr, MakePickup(MakeDesc(ObjectType::kBall, std::nullopt)));
    return true;
  }
};

}  // namespace

std::unique_ptr<Level> MakePutNextUnlockFamilyLevel(const LevelConfig& c) {
  switch (c.family) {
    case LevelFamily::kPutNextLocal:
      return std::make_unique<PutNextLocalLevel>(c);
    case LevelFamily::kPutNext:
      return std::make_unique<PutNextLevel>(c);
    case LevelFamily::kMoveTwoAcross:
      return std::make_unique<MoveTwoAcrossLevel>(c);
    case LevelFamily::kUnlock:
      return std::make_unique<UnlockLevel>(c);
    case LevelFamily::kUnlockLocal:
      return std::make_unique<UnlockLocalLevel>(c);
    case LevelFamily::kKeyInBox:
      return std::make_unique<KeyInBoxLevel>(c);
    case LevelFamily::kUnlockPickup:
      return std::make_unique<UnlockPickupLevel>(c);
    case LevelFamily::kBlockedUnlockPickup:
      return std::make_unique<BlockedUnlockPickupLevel>(c);
    case LevelFamily::kUnlockToUnlock:
      return std::make_unique<UnlockToUnlockLevel>(c);
    default:
      return nullptr;
  }
}

}  // namespace skillgrid::envs
