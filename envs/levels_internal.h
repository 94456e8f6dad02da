// Shared by the level sources (levels*.cpp), not part of the public API: the RoomGridLevel
// base (generation loop, validation, mission text, max_steps), small helpers, and one factory
// per source file.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "envs/instr.h"
#include "envs/level.h"
#include "envs/roomgrid.h"

namespace skillgrid::envs {

/// What a family's GenMission hands back besides the world and the instruction.
struct MissionExtras {
  /// PutNext*Carrying: the cell of the object the agent starts holding; (-1, -1) for none.
  Pos carry_from{-1, -1};
};

/// Base of every level: Minigrid's RoomGridLevel. Generate runs RoomGrid.Reset + GenMission
/// + validate_instrs until a sample is accepted, then sets the mission text (Surface at the
/// start pose), the start-carrying move and max_steps.
class RoomGridLevel : public Level {
 public:
  /// Builds the level's wall grid once; `config` is copied.
  explicit RoomGridLevel(const LevelConfig& config);

  const std::string& id() const override { return config_.id; }
  const LevelConfig& config() const override { return config_; }
  void Generate(Rng& rng, WorldState* world, Instr* instr) const override;

 protected:
  /// One try of gen_mission: builds objects, agent and *instr into rg's world. Returns false
  /// to reject the sample (RejectSampling); may throw GenerationError (out of tries).
  virtual bool GenMission(RoomGrid& rg, Instr* instr, MissionExtras* extras) const = 0;
  /// validate_instrs' key rule applies (LevelGen with unblocking on).
  virtual bool Unblocking() const { return false; }

  LevelConfig config_;

 private:
  Grid walls_;
  uint16_t walls_next_id_ = 1;
};

/// Throws InputError ("level <id>: <what>") unless `ok`; for config checks in constructors.
void RequireConfig(bool ok, const LevelConfig& config, const std::string& what);

/// The four locations in Minigrid's LOC_NAMES order (left, right, front, behind).
inline constexpr DescLoc kLocNames[4] = {DescLoc::kLeft, DescLoc::kRight, DescLoc::kFront,
                                         DescLoc::kBehind};

/// Size of the position buffers the families use for AddDistractors.
inline constexpr int kMaxLevelObjects = 40;

/// Places the agent (PlaceAgent with a random room) until it stands outside room `avoid`
/// (col, row); GenerationError after 1000 tries.
void PlaceAgentOutside(RoomGrid& rg, Pos avoid);

/// A locked room: a random room (col, row) gets a locked door of a random colour on a random
/// side, and a key of that colour goes to a random other room.
struct LockedRoom {
  Pos room;     ///< (col, row) of the locked room
  Pos door;     ///< position of its locked door
  Color color;  ///< colour of the door and of its key
};

/// Adds a LockedRoom (GoToImpUnlock, Unlock). Draws: room column, row, then AddDoor's draws,
/// then (column, row) pairs until one differs from the locked room.
LockedRoom AddLockedRoomAndKey(RoomGrid& rg);

/// True if the object at p matches `d` as find_matching_objs (use_location) would count it:
/// type and colour (each when given; p must hold an object), and for a location, p lies in the
/// agent's room (its walls included) on that side of the agent.
inline bool DescMatchesAt(const ObjDesc& d, const WorldState& w, Pos p) {
  const Object& o = w.grid.at(p);
  if (o.empty() || (d.type && o.type != *d.type) || (d.color && o.color != *d.color)) {
    return false;
  }
  if (d.loc == DescLoc::kNone) return true;
  if (w.rooms.valid()) {
    const Pos room = w.rooms.RoomOf(w.agent_pos);
    if (!w.rooms.Inside(room.x, room.y, p)) return false;
  }
  const Pos f = DirVec(w.agent_dir);
  const int vx = p.x - w.agent_pos.x, vy = p.y - w.agent_pos.y;
  const int along = vx * f.x + vy * f.y;  // > 0 in front
  const int side = -vx * f.y + vy * f.x;  // > 0 on the right
  switch (d.loc) {
    case DescLoc::kFront:
      return along > 0;
    case DescLoc::kBehind:
      return along < 0;
    case DescLoc::kLeft:
      return side < 0;
    case DescLoc::kRight:
      return side > 0;
    default:
      return true;
  }
}

/// Copies an instruction's tree into *dst, keeping dst's pools (so resets do not allocate).
inline void AssignInstr(Instr* dst, const Instr& src) {
  dst->nodes = src.nodes;
  dst->num_nodes = src.num_nodes;
}

/// An ObjDesc of a type and colour (either may be absent) and a location.
inline ObjDesc MakeDesc(std::optional<ObjectType> type, std::optional<Color> color,
                        DescLoc loc = DescLoc::kNone) {
  ObjDesc d;
  d.type = type;
  d.color = color;
  d.loc = loc;
  return d;
}

/// The description "<colour> <type>" of the object at p.
inline ObjDesc DescOf(const WorldState& w, Pos p) {
  const Object& o = w.grid.at(p);
  return MakeDesc(o.type, o.color);
}

/// Minigrid's _rand_subset: moves k distinct random elements of a[0..n) to its front.
template <typename T>
void RandSubset(Rng& rng, T* a, int n, int k) {
  for (int i = 0; i < k; ++i) {
    const int j = i + RandIndex(rng, n - i);
    T t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/// Per-file factories: build the level of config.family, or nullptr if the family is not
/// defined in that file.
std::unique_ptr<Level> MakeGoToFamilyLevel(const LevelConfig& config);
std::unique_ptr<Level> MakeOpenPickupFamilyLevel(const LevelConfig& config);
std::unique_ptr<Level> MakePutNextUnlockFamilyLevel(const LevelConfig& config);
std::unique_ptr<Level> MakeOtherFamilyLevel(const LevelConfig& config);
std::unique_ptr<Level> MakeLevelGenFamilyLevel(const LevelConfig& config);

/// The table of every registered id, in the reference's order.
const std::vector<LevelConfig>& LevelConfigs();

}  // namespace skillgrid::envs
