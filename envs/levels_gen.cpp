// The BabyAI level generator (minigrid/envs/babyai/core/levelgen.py): GoToSeq*, PickupLoc,
// Synth, SynthS5R2, SynthLoc, SynthSeq, MiniBossLevel, BossLevel, BossLevelNoUnlock.
#include <iterator>

#include "envs/levels_internal.h"

namespace skillgrid::envs {
namespace {

constexpr int kRandom = RoomGrid::kRandom;

// Minigrid's OBJ_TYPES order (box, ball, key, door); the first three are OBJ_TYPES_NOT_DOOR.
constexpr ObjectType kObjTypes[4] = {ObjectType::kBox, ObjectType::kBall, ObjectType::kKey,
                                     ObjectType::kDoor};
constexpr ObjectType kDoorType[1] = {ObjectType::kDoor};

// One class for every LevelGen id; the options come from config.gen.
//
// Per episode (gen_mission): with probability locked_room_prob a locked room (one locked door
// on a side with a neighbour, its key in another room); connect_all; num_dists distractors in
// random rooms; the agent outside the locked room; without unblocking, every object
// reachable; then rand_instr. The locked room is forgotten at every episode (upstream 3.1
// kept the previous episode's; docs/levels.md, quirk 12).
class LevelGenLevel final : public RoomGridLevel {
 public:
  explicit LevelGenLevel(const LevelConfig& c) : RoomGridLevel(c) {
    const LevelGenOptions& o = c.gen;
    for (uint8_t bit : {kActGoTo, kActPickup, kActOpen, kActPutNext}) {
      if (o.action_kinds & bit) actions_[num_actions_++] = bit;
    }
    RequireConfig(num_actions_ > 0, c, "needs at least one action kind");
    RequireConfig((o.instr_kinds & (kKindAction | kKindAnd | kKindSeq)) != 0, c,
                  "needs at least one instruction kind");
    RequireConfig(o.locked_room_prob <= 0.0f || c.layout.num_rows * c.layout.num_cols >= 2, c,
                  "a locked room needs at least two rooms");
  }

 protected:
  bool Unblocking() const override { return config_.gen.unblocking; }

  bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras*) const override {
    const LevelGenOptions& o = config_.gen;
    Rng& rng = rg.rng();
    Pos locked{-1, -1};
    if (rng.Float() < o.locked_room_prob) AddLockedRoom(rg, &locked);
    rg.ConnectAll();
    Pos d[kMaxLevelObjects];
    rg.AddDistractors(kRandom, kRandom, o.num_dists, false, d);
    PlaceAgentOutside(rg, locked);
    if (!o.unblocking && !rg.CheckObjsReachable()) return false;
    Cells cells;
    cells.n = rg.ObjectCells(cells.pos, static_cast<int>(std::size(cells.pos)));
    AssignInstr(instr, RandInstr(rg, locked, cells, o.instr_kinds));
    return true;
  }

 private:
  // add_locked_room: a locked door on a random room's side that has a neighbour; the key of its
  // colour in a random other room.
  static void AddLockedRoom(RoomGrid& rg, Pos* locked) {
    Rng& rng = rg.rng();
    const int cols = rg.num_cols(), rows = rg.num_rows();
    Pos door;
    for (;;) {
      const Pos r{RandIndex(rng, cols), RandIndex(rng, rows)};
      const int side = rng.Int(0, 4);
      if (!rg.room(r.x, r.y).has_neighbor[side]) continue;
      *locked = r;
      door = rg.AddDoor(r.x, r.y, side, std::nullopt, true);
      break;
    }
    const Color color = rg.world().grid.at(door).color;
    for (;;) {
      const Pos r{RandIndex(rng, cols), RandIndex(rng, rows)};
      if (r == *locked) continue;
      rg.AddObject(r.x, r.y, ObjectType::kKey, color);
      break;
    }
  }

  // rand_obj: colour (or none), type, maybe a location; redrawn (at most 101 draws) until it
  // matches an object at the start pose and, without implicit unlocking, one outside the
  // locked room. `cells` lists the world's objects (the world does not change meanwhile).
  ObjDesc RandObj(RoomGrid& rg, Pos locked, const Pos* cells, int num_cells,
                  const ObjectType* types, int num_types) const {
    const LevelGenOptions& o = config_.gen;
    Rng& rng = rg.rng();
    const WorldState& w = rg.world();
    const bool need_outside = !o.implicit_unlock && locked.x >= 0;
    for (int tries = 0; tries <= 100; ++tries) {
      const int c = RandIndex(rng, kNumColors + 1);
      ObjDesc d = MakeDesc(types[RandIndex(rng, num_types)],
                           c == 0 ? std::nullopt : std::optional<Color>(kColorsByName[c - 1]));
      if (o.locations && rng.Bool()) d.loc = kLocNames[RandIndex(rng, 4)];
      for (int k = 0; k < num_cells; ++k) {
        if (!DescMatchesAt(d, w, cells[k])) continue;
        if (need_outside && w.rooms.Inside(locked.x, locked.y, cells[k])) continue;
        return d;
      }
    }
    throw GenerationError("rand_obj: failed to find a suitable object");
  }

  // The world's objects, for RandObj.
  struct Cells {
    Pos pos[RoomGrid::kMaxObjects + 4 * RoomGrid::kMaxRooms];
    int n = 0;
  };

  // rand_instr over the kinds in `kinds` (bits of kKindAction, kKindAnd, kKindSeq).
  Instr RandInstr(RoomGrid& rg, Pos locked, const Cells& cells, uint8_t kinds) const {
    Rng& rng = rg.rng();
    uint8_t list[3];
    int n = 0;
    for (uint8_t bit : {kKindAction, kKindAnd, kKindSeq}) {
      if (kinds & bit) list[n++] = bit;
    }
    const uint8_t kind = list[RandIndex(rng, n)];
    auto obj = [&](const ObjectType* types, int num_types) {
      return RandObj(rg, locked, cells.pos, cells.n, types, num_types);
    };
    if (kind == kKindAction) {
      switch (actions_[RandIndex(rng, num_actions_)]) {
        case kActGoTo:
          return MakeGoTo(obj(kObjTypes, 4));
        case kActPickup:
          return MakePickup(obj(kObjTypes, 3));
        case kActOpen:
          return MakeOpen(obj(kDoorType, 1));
        default: {
          const ObjDesc move = obj(kObjTypes, 3);
          return MakePutNext(move, obj(kObjTypes, 4));
        }
      }
    }
    if (kind == kKindAnd) {
      const Instr a = RandInstr(rg, locked, cells, kKindAction);
      return MakeAnd(a, RandInstr(rg, locked, cells, kKindAction));
    }
    const Instr a = RandInstr(rg, locked, cells, kKindAction | kKindAnd);
    const Instr b = RandInstr(rg, locked, cells, kKindAction | kKindAnd);
    return RandIndex(rng, 2) == 0 ? MakeBefore(a, b) : MakeAfter(a, b);
  }

  uint8_t actions_[4] = {};
  int num_actions_ = 0;
};

}  // namespace

std::unique_ptr<Level> MakeLevelGenFamilyLevel(const LevelConfig& c) {
  if (c.family != LevelFamily::kLevelGen) return nullptr;
  return std::make_unique<LevelGenLevel>(c);
}

}  // namespace skillgrid::envs
