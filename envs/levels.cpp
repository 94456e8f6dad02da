// The level table (every registered BabyAI id with its config), the factory, and the
// RoomGridLevel generation loop shared by every family (roomgrid_level.py's _gen_grid,
// validate_instrs and the max_steps rule).
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "envs/levels_internal.h"
#include "envs/state_io.h"

namespace skillgrid::envs {
namespace {

// A sample that keeps being rejected this often means a broken config, not bad luck.
constexpr int kMaxSamples = 10000;

bool Adjacent(Pos a, Pos b) { return std::abs(a.x - b.x) + std::abs(a.y - b.y) == 1; }

// validate_instrs for node i and below. PutNext: the move and fixed sets must not share an
// object, and no move object may already lie next to a fixed one (the "same single object"
// rule is the shared-object rule's special case). With unblocking: no description may be a
// key of a locked door's colour.
bool ValidNode(const Instr& in, int i, uint32_t locked_colors, bool unblocking) {
  const InstrNode& n = in.nodes[i];
  if (!IsActionKind(n.kind)) {
    return ValidNode(in, n.a, locked_colors, unblocking) &&
           ValidNode(in, n.b, locked_colors, unblocking);
  }
  if (n.kind == InstrKind::kPutNext) {
    for (uint16_t a : in.ObjSet(n.desc[0])) {
      for (uint16_t b : in.ObjSet(n.desc[1])) {
        if (a == b) return false;
      }
    }
    for (const Pos& a : in.ObjPoss(n.desc[0])) {
      for (const Pos& b : in.ObjPoss(n.desc[1])) {
        if (Adjacent(a, b)) return false;
      }
    }
  }
  if (unblocking) {
    const int num_descs = n.kind == InstrKind::kPutNext ? 2 : 1;
    for (int k = 0; k < num_descs; ++k) {
      const ObjDesc& d = n.desc[k];
      if (d.type == ObjectType::kKey && d.color &&
          ((locked_colors >> static_cast<int>(*d.color)) & 1u)) {
        return false;
      }
    }
  }
  return true;
}

// Chainable builder for the table below.
struct Cfg {
  LevelConfig c;
  Cfg(const char* name, LevelFamily family, int room_size, int rows, int cols, const char* desc) {
    c.id = std::string("BabyAI-") + name;
    c.family = family;
    c.layout = RoomLayout{room_size, rows, cols};
    c.description = desc;
  }
  Cfg& Objs(int n) {
    c.num_objs = n;
    return *this;
  }
  Cfg& Fixed(int max_steps) {
    c.fixed_max_steps = max_steps;
    return *this;
  }
  Cfg& Strict() {
    c.strict = true;
    return *this;
  }
  Cfg& DoorsOpen() {
    c.doors_open = true;
    return *this;
  }
  Cfg& Grey() {
    c.grey_distractors = true;
    return *this;
  }
  Cfg& Distractors() {
    c.distractors = true;
    return *this;
  }
  Cfg& Carrying() {
    c.start_carrying = true;
    return *this;
  }
  Cfg& Select(SelectBy s) {
    c.select_by = s;
    return *this;
  }
  Cfg& Colors(Color first, Color second) {
    c.first_color = first;
    c.second_color = second;
    return *this;
  }
  Cfg& Gen(int num_dists, float locked_room_prob, bool locations, bool unblocking,
           bool implicit_unlock, uint8_t action_kinds, uint8_t instr_kinds) {
    c.gen.num_dists = num_dists;
    c.gen.locked_room_prob = locked_room_prob;
    c.gen.locations = locations;
    c.gen.unblocking = unblocking;
    c.gen.implicit_unlock = implicit_unlock;
    c.gen.action_kinds = action_kinds;
    c.gen.instr_kinds = instr_kinds;
    return *this;
  }
};

using F = LevelFamily;
constexpr uint8_t kAllActs = kActGoTo | kActPickup | kActOpen | kActPutNext;
constexpr uint8_t kAllKinds = kKindAction | kKindAnd | kKindSeq;

std::vector<LevelConfig> BuildTable() {
  std::vector<Cfg> t = {
      // GoTo (goto.py).
      Cfg("GoToRedBallGrey-v0", F::kGoToRedBall, 8, 1, 1,
          "go to the red ball; one room, 7 grey distractors")
          .Objs(7)
          .Grey(),
      Cfg("GoToRedBall-v0", F::kGoToRedBall, 8, 1, 1, "go to the red ball; one room, 7 distractors")
          .Objs(7),
      Cfg("GoToRedBallNoDists-v0", F::kGoToRedBall, 8, 1, 1,
          "go to the red ball; one room, no distractors")
          .Objs(0),
      Cfg("GoToObj-v0", F::kGoToObj, 8, 1, 1, "go to the only object in one 8x8 room"),
      Cfg("GoToObjS4-v0", F::kGoToObj, 4, 1, 1, "go to the only object in one 4x4 room"),
      Cfg("GoToObjS6-v1", F::kGoToObj, 6, 1, 1, "go to the only object in one 6x6 room"),
      Cfg("GoToLocal-v0", F::kGoToLocal, 8, 1, 1, "go to one of 8 objects in one 8x8 room").Objs(8),
      Cfg("GoToLocalS5N2-v0", F::kGoToLocal, 5, 1, 1, "go to one of 2 objects in one 5x5 room")
          .Objs(2),
      Cfg("GoToLocalS6N2-v0", F::kGoToLocal, 6, 1, 1, "go to one of 2 objects in one 6x6 room")
          .Objs(2),
      Cfg("GoToLocalS6N3-v0", F::kGoToLocal, 6, 1, 1, "go to one of 3 objects in one 6x6 room")
          .Objs(3),
      Cfg("GoToLocalS6N4-v0", F::kGoToLocal, 6, 1, 1, "go to one of 4 objects in one 6x6 room")
          .Objs(4),
      Cfg("GoToLocalS7N4-v0", F::kGoToLocal, 7, 1, 1, "go to one of 4 objects in one 7x7 room")
          .Objs(4),
      Cfg("GoToLocalS7N5-v0", F::kGoToLocal, 7, 1, 1, "go to one of 5 objects in one 7x7 room")
          .Objs(5),
      Cfg("GoToLocalS8N2-v0", F::kGoToLocal, 8, 1, 1, "go to one of 2 objects in one 8x8 room")
          .Objs(2),
      Cfg("GoToLocalS8N3-v0", F::kGoToLocal, 8, 1, 1, "go to one of 3 objects in one 8x8 room")
          .Objs(3),
      Cfg("GoToLocalS8N4-v0", F::kGoToLocal, 8, 1, 1, "go to one of 4 objects in one 8x8 room")
          .Objs(4),
      Cfg("GoToLocalS8N5-v0", F::kGoToLocal, 8, 1, 1, "go to one of 5 objects in one 8x8 room")
          .Objs(5),
      Cfg("GoToLocalS8N6-v0", F::kGoToLocal, 8, 1, 1, "go to one of 6 objects in one 8x8 room")
          .Objs(6),
      Cfg("GoToLocalS8N7-v0", F::kGoToLocal, 8, 1, 1, "go to one of 7 objects in one 8x8 room")
          .Objs(7),
      Cfg("GoTo-v0", F::kGoTo, 8, 3, 3, "go to an object anywhere in a 3x3 maze; 18 objects")
          .Objs(18),
      Cfg("GoToOpen-v0", F::kGoTo, 8, 3, 3,
          "go to an object anywhere in a 3x3 maze with open doors; 18 objects")
          .Objs(18)
          .DoorsOpen(),
      Cfg("GoToObjMaze-v0", F::kGoTo, 8, 3, 3, "go to the only object of a 3x3 maze").Objs(1),
      Cfg("GoToObjMazeOpen-v0", F::kGoTo, 8, 3, 3,
          "go to the only object of a 3x3 maze with open doors")
          .Objs(1)
          .DoorsOpen(),
      Cfg("GoToObjMazeS4R2-v0", F::kGoTo, 4, 2, 2,
          "go to the only object of a 2x2 maze of 4x4 rooms")
          .Objs(1),
      Cfg("GoToObjMazeS4-v0", F::kGoTo, 4, 3, 3, "go to the only object of a 3x3 maze of 4x4 rooms")
          .Objs(1),
      Cfg("GoToObjMazeS5-v0", F::kGoTo, 5, 3, 3, "go to the only object of a 3x3 maze of 5x5 rooms")
          .Objs(1),
      Cfg("GoToObjMazeS6-v0", F::kGoTo, 6, 3, 3, "go to the only object of a 3x3 maze of 6x6 rooms")
          .Objs(1),
      Cfg("GoToObjMazeS7-v0", F::kGoTo, 7, 3, 3, "go to the only object of a 3x3 maze of 7x7 rooms")
          .Objs(1),
      Cfg("GoToImpUnlock-v0", F::kGoToImpUnlock, 8, 3, 3,
          "go to an object in a locked room; the key lies in another room; 2 objects per room")
          .Objs(2),
      Cfg("GoToSeq-v0", F::kLevelGen, 8, 3, 3,
          "a sequence of go-to instructions in a 3x3 maze; 18 objects, no locked room")
          .Gen(18, 0.0f, false, false, true, kActGoTo, kAllKinds),
      Cfg("GoToSeqS5R2-v0", F::kLevelGen, 5, 2, 2,
          "a sequence of go-to instructions in a 2x2 maze of 5x5 rooms; 4 objects")
          .Gen(4, 0.0f, false, false, true, kActGoTo, kAllKinds),
      Cfg("GoToRedBlueBall-v0", F::kGoToRedBlueBall, 8, 1, 1,
          "go to the one red or blue ball; one room, 7 other distractors")
          .Objs(7),
      Cfg("GoToDoor-v0", F::kGoToDoor, 7, 3, 3, "go to one of the 4 doors of the centre room"),
      Cfg("GoToObjDoor-v0", F::kGoToObjDoor, 8, 3, 3,
          "go to an object or door of the centre room; 8 objects, 4 doors")
          .Objs(8),
      // Open (open.py).
      Cfg("Open-v0", F::kOpen, 8, 3, 3, "open a door anywhere in a 3x3 maze; 18 objects").Objs(18),
      Cfg("OpenRedDoor-v0", F::kOpenRedDoor, 5, 1, 2, "open the red door between two small rooms"),
      Cfg("OpenDoor-v0", F::kOpenDoor, 8, 3, 3,
          "open a door of the centre room, named by colour or location"),
      Cfg("OpenDoorDebug-v0", F::kOpenDoor, 8, 3, 3,
          "open a door of the centre room by colour or location; opening a wrong door fails")
          .Strict(),
      Cfg("OpenDoorColor-v0", F::kOpenDoor, 8, 3, 3, "open the door of a given colour, centre room")
          .Select(SelectBy::kColor),
      Cfg("OpenDoorLoc-v0", F::kOpenDoor, 8, 3, 3, "open a door at a given location, centre room")
          .Select(SelectBy::kLoc),
      Cfg("OpenTwoDoors-v0", F::kOpenTwoDoors, 6, 3, 3,
          "open two opposite doors of the centre room in order")
          .Fixed(720),
      Cfg("OpenRedBlueDoors-v0", F::kOpenTwoDoors, 6, 3, 3,
          "open the red door, then the blue door opposite it")
          .Fixed(720)
          .Colors(Color::kRed, Color::kBlue),
      Cfg("OpenRedBlueDoorsDebug-v0", F::kOpenTwoDoors, 6, 3, 3,
          "open the red door, then the blue one; toggling a door out of order fails")
          .Fixed(720)
          .Colors(Color::kRed, Color::kBlue)
          .Strict(),
      Cfg("OpenDoorsOrderN2-v0", F::kOpenDoorsOrder, 6, 3, 3,
          "open one or two of 2 doors, in the order given")
          .Fixed(720)
          .Objs(2),
      Cfg("OpenDoorsOrderN4-v0", F::kOpenDoorsOrder, 6, 3, 3,
          "open one or two of 4 doors, in the order given")
          .Fixed(720)
          .Objs(4),
      Cfg("OpenDoorsOrderN2Debug-v0", F::kOpenDoorsOrder, 6, 3, 3,
          "open one or two of 2 doors in order; toggling a wrong door fails")
          .Fixed(720)
          .Objs(2)
          .Strict(),
      Cfg("OpenDoorsOrderN4Debug-v0", F::kOpenDoorsOrder, 6, 3, 3,
          "open one or two of 4 doors in order; toggling a wrong door fails")
          .Fixed(720)
          .Objs(4)
          .Strict(),
      // Pickup (pickup.py).
      Cfg("Pickup-v0", F::kPickup, 8, 3, 3, "pick up an object anywhere in a 3x3 maze; 18 objects")
          .Objs(18),
      Cfg("UnblockPickup-v0", F::kUnblockPickup, 8, 3, 3,
          "pick up an object in a 3x3 maze where some path is blocked; 20 objects")
          .Objs(20),
      Cfg("PickupLoc-v0", F::kLevelGen, 8, 1, 1,
          "pick up an object described by colour, type and maybe location; one room")
          .Gen(8, 0.0f, true, false, true, kActPickup, kKindAction),
      Cfg("PickupDist-v0", F::kPickupDist, 7, 1, 1,
          "pick up an object named by type, colour or both; one room, 5 objects")
          .Objs(5),
      Cfg("PickupDistDebug-v0", F::kPickupDist, 7, 1, 1,
          "pick up an object named by type, colour or both; a wrong pickup fails")
          .Objs(5)
          .Strict(),
      Cfg("PickupAbove-v0", F::kPickupAbove, 6, 3, 3, "pick up the object in the room above")
          .Fixed(288),
      // PutNext (putnext.py).
      Cfg("PutNextLocal-v0", F::kPutNextLocal, 8, 1, 1,
          "put an object next to another; one room, 8 distinct objects")
          .Objs(8),
      Cfg("PutNextLocalS5N3-v0", F::kPutNextLocal, 5, 1, 1,
          "put an object next to another; one 5x5 room, 3 objects")
          .Objs(3),
      Cfg("PutNextLocalS6N4-v0", F::kPutNextLocal, 6, 1, 1,
          "put an object next to another; one 6x6 room, 4 objects")
          .Objs(4),
      Cfg("PutNextS4N1-v0", F::kPutNext, 4, 1, 2,
          "put an object next to one across the open middle wall; 1 object per room")
          .Objs(1)
          .Fixed(128),
      Cfg("PutNextS5N2-v0", F::kPutNext, 5, 1, 2,
          "put an object next to one across the open middle wall; 2 objects per room")
          .Objs(2)
          .Fixed(200),
      Cfg("PutNextS5N1-v0", F::kPutNext, 5, 1, 2,
          "put an object next to one across the open middle wall; 1 object per room")
          .Objs(1)
          .Fixed(200),
      Cfg("PutNextS6N3-v0", F::kPutNext, 6, 1, 2,
          "put an object next to one across the open middle wall; 3 objects per room")
          .Objs(3)
          .Fixed(288),
      Cfg("PutNextS7N4-v0", F::kPutNext, 7, 1, 2,
          "put an object next to one across the open middle wall; 4 objects per room")
          .Objs(4)
          .Fixed(392),
      Cfg("PutNextS5N2Carrying-v0", F::kPutNext, 5, 1, 2,
          "as PutNextS5N2, starting with the object to move in hand")
          .Objs(2)
          .Fixed(200)
          .Carrying(),
      Cfg("PutNextS6N3Carrying-v0", F::kPutNext, 6, 1, 2,
          "as PutNextS6N3, starting with the object to move in hand")
          .Objs(3)
          .Fixed(288)
          .Carrying(),
      Cfg("PutNextS7N4Carrying-v0", F::kPutNext, 7, 1, 2,
          "as PutNextS7N4, starting with the object to move in hand")
          .Objs(4)
          .Fixed(392)
          .Carrying(),
      // Unlock (unlock.py).
      Cfg("Unlock-v0", F::kUnlock, 8, 3, 3,
          "open a locked door; its key lies in another room; 3 objects per room")
          .Objs(3),
      Cfg("UnlockLocal-v0", F::kUnlockLocal, 8, 3, 3,
          "open the locked door of the room; its key lies in the room")
          .Objs(3),
      Cfg("UnlockLocalDist-v0", F::kUnlockLocal, 8, 3, 3,
          "open the locked door of the room; its key and 3 distractors lie in the room")
          .Objs(3)
          .Distractors(),
      Cfg("KeyInBox-v0", F::kKeyInBox, 8, 3, 3,
          "open the locked door of the room; its key is inside a box"),
      Cfg("UnlockPickup-v0", F::kUnlockPickup, 6, 1, 2,
          "unlock the door to the next room, then pick up the box there")
          .Objs(4),
      Cfg("UnlockPickupDist-v0", F::kUnlockPickup, 6, 1, 2,
          "unlock the door to the next room, then pick up the box there; 4 distractors")
          .Objs(4)
          .Distractors(),
      Cfg("BlockedUnlockPickup-v0", F::kBlockedUnlockPickup, 6, 1, 2,
          "move the ball blocking a locked door, unlock it, pick up the box behind")
          .Fixed(576),
      Cfg("UnlockToUnlock-v0", F::kUnlockToUnlock, 6, 1, 3,
          "unlock one door to get the key of another, then pick up the ball behind it")
          .Fixed(1080),
      // Other (other.py).
      Cfg("ActionObjDoor-v0", F::kActionObjDoor, 7, 3, 3,
          "go to, pick up or open an object or door of the centre room")
          .Objs(5),
      Cfg("FindObjS5-v0", F::kFindObj, 5, 3, 3,
          "find and pick up the only object of a 3x3 maze of 5x5 rooms")
          .Fixed(500),
      Cfg("FindObjS6-v0", F::kFindObj, 6, 3, 3,
          "find and pick up the only object of a 3x3 maze of 6x6 rooms")
          .Fixed(720),
      Cfg("FindObjS7-v0", F::kFindObj, 7, 3, 3,
          "find and pick up the only object of a 3x3 maze of 7x7 rooms")
          .Fixed(980),
      Cfg("KeyCorridor-v0", F::kKeyCorridor, 6, 3, 3,
          "find a key off a corridor, unlock a room and pick up the ball in it")
          .Fixed(1080),
      Cfg("KeyCorridorS3R1-v0", F::kKeyCorridor, 3, 1, 3, "KeyCorridor with 1 row of 3x3 rooms")
          .Fixed(270),
      Cfg("KeyCorridorS3R2-v0", F::kKeyCorridor, 3, 2, 3, "KeyCorridor with 2 rows of 3x3 rooms")
          .Fixed(270),
      Cfg("KeyCorridorS3R3-v0", F::kKeyCorridor, 3, 3, 3, "KeyCorridor with 3 rows of 3x3 rooms")
          .Fixed(270),
      Cfg("KeyCorridorS4R3-v0", F::kKeyCorridor, 4, 3, 3, "KeyCorridor with 3 rows of 4x4 rooms")
          .Fixed(480),
      Cfg("KeyCorridorS5R3-v0", F::kKeyCorridor, 5, 3, 3, "KeyCorridor with 3 rows of 5x5 rooms")
          .Fixed(750),
      Cfg("KeyCorridorS6R3-v0", F::kKeyCorridor, 6, 3, 3, "KeyCorridor with 3 rows of 6x6 rooms")
          .Fixed(1080),
      Cfg("OneRoomS8-v0", F::kOneRoom, 8, 1, 1, "pick up the ball in one 8x8 room"),
      Cfg("OneRoomS12-v0", F::kOneRoom, 12, 1, 1, "pick up the ball in one 12x12 room"),
      Cfg("OneRoomS16-v0", F::kOneRoom, 16, 1, 1, "pick up the ball in one 16x16 room"),
      Cfg("OneRoomS20-v0", F::kOneRoom, 20, 1, 1, "pick up the ball in one 20x20 room"),
      Cfg("MoveTwoAcrossS5N2-v0", F::kMoveTwoAcross, 5, 1, 2,
          "two put-next-to moves across the open middle wall; 2 objects per room")
          .Objs(2)
          .Fixed(400),
      Cfg("MoveTwoAcrossS8N9-v0", F::kMoveTwoAcross, 8, 1, 2,
          "two put-next-to moves across the open middle wall; 9 objects per room")
          .Objs(9)
          .Fixed(1024),
      // Synth (synth.py), LevelGen.
      Cfg("Synth-v0", F::kLevelGen, 8, 3, 3,
          "any single action in a 3x3 maze; 18 objects, maybe a locked room")
          .Gen(18, 0.5f, false, true, false, kAllActs, kKindAction),
      Cfg("SynthS5R2-v0", F::kLevelGen, 5, 2, 3,
          "as Synth in 2x3 rooms of size 5 (Minigrid's registration; 18 objects)")
          .Gen(18, 0.5f, false, true, false, kAllActs, kKindAction),
      Cfg("SynthLoc-v0", F::kLevelGen, 8, 3, 3, "as Synth, descriptions may use locations")
          .Gen(18, 0.5f, true, true, false, kAllActs, kKindAction),
      Cfg("SynthSeq-v0", F::kLevelGen, 8, 3, 3,
          "as SynthLoc with 'and', ', then' and 'after you' compositions")
          .Gen(18, 0.5f, true, true, false, kAllActs, kAllKinds),
      Cfg("MiniBossLevel-v0", F::kLevelGen, 5, 2, 2,
          "the full instruction language in a 2x2 maze of 5x5 rooms; 7 objects")
          .Gen(7, 0.25f, true, true, true, kAllActs, kAllKinds),
      Cfg("BossLevel-v0", F::kLevelGen, 8, 3, 3,
          "the full instruction language in a 3x3 maze; 18 objects, maybe a locked room")
          .Gen(18, 0.5f, true, true, true, kAllActs, kAllKinds),
      Cfg("BossLevelNoUnlock-v0", F::kLevelGen, 8, 3, 3,
          "the full instruction language in a 3x3 maze; no locked room")
          .Gen(18, 0.0f, true, true, false, kAllActs, kAllKinds),
  };
  std::vector<LevelConfig> out;
  out.reserve(t.size());
  for (Cfg& c : t) out.push_back(std::move(c.c));
  return out;
}

int EditDistance(const std::string& a, const std::string& b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

void RequireConfig(bool ok, const LevelConfig& config, const std::string& what) {
  if (!ok) throw InputError("level " + config.id + ": " + what);
}

void PlaceAgentOutside(RoomGrid& rg, Pos avoid) {
  for (int t = 0; t < 1000; ++t) {
    rg.PlaceAgent();
    if (rg.RoomFromPos(rg.world().agent_pos) != avoid) return;
  }
  throw GenerationError("place_agent: every try landed in the locked room");
}

LockedRoom AddLockedRoomAndKey(RoomGrid& rg) {
  Rng& rng = rg.rng();
  const int cols = rg.num_cols(), rows = rg.num_rows();
  LockedRoom lr;
  lr.room = {RandIndex(rng, cols), RandIndex(rng, rows)};
  lr.door = rg.AddDoor(lr.room.x, lr.room.y, RoomGrid::kRandom, std::nullopt, true);
  lr.color = rg.world().grid.at(lr.door).color;
  for (;;) {
    const Pos k{RandIndex(rng, cols), RandIndex(rng, rows)};
    if (k == lr.room) continue;
    rg.AddObject(k.x, k.y, ObjectType::kKey, lr.color);
    return lr;
  }
}

RoomGridLevel::RoomGridLevel(const LevelConfig& config) : config_(config) {
  RequireConfig(config_.num_objs >= 0 && config_.num_objs <= kMaxLevelObjects &&
                    config_.gen.num_dists >= 0 && config_.gen.num_dists <= kMaxLevelObjects,
                config_, "object counts must lie in 0.." + std::to_string(kMaxLevelObjects));
  // A coarse capacity guard (interior cells, less the agent's cell and its neighbours), so
  // that an edited config fails here rather than by endless rejection.
  const int objects = std::max(config_.num_objs,
                               config_.gen.num_dists * (config_.family == LevelFamily::kLevelGen));
  const int interior = (config_.layout.room_size - 2) * (config_.layout.room_size - 2) *
                       config_.layout.num_rows * config_.layout.num_cols;
  RequireConfig(objects == 0 || objects <= interior - 5, config_, "too many objects for the rooms");
  const RoomLayout& l = config_.layout;
  if (!l.valid() || l.num_rows * l.num_cols > RoomGrid::kMaxRooms || l.room_size > 64) {
    throw InputError("level " + config_.id + ": unsupported room layout " +
                     std::to_string(l.num_rows) + "x" + std::to_string(l.num_cols) + " of size " +
                     std::to_string(l.room_size));
  }
  walls_ = RoomGrid::MakeWallGrid(l, &walls_next_id_);
}

void RoomGridLevel::Generate(Rng& rng, WorldState* world, Instr* instr) const {
  RoomGrid rg(world, &rng);
  MissionExtras extras;
  for (int sample = 0;; ++sample) {
    if (sample == kMaxSamples) {
      throw std::runtime_error("level " + config_.id + ": no valid episode after " +
                               std::to_string(kMaxSamples) + " samples");
    }
    rg.Reset(config_.layout, walls_, walls_next_id_);
    extras = MissionExtras{};
    try {
      if (!GenMission(rg, instr, &extras)) continue;
    } catch (const GenerationError&) {
      continue;  // Python's RecursionError: start over
    }
    // Resolve every description at the start pose (validate_instrs, the surface text and the
    // verifier: the nodes are fresh from the Make* builders, so this is ResetVerifier).
    ResolveInstr(*instr, *world);
    const bool unblocking = Unblocking();
    if (ValidNode(*instr, 0, unblocking ? rg.LockedDoorColors() : 0u, unblocking)) break;
  }
  world->mission = Surface(*instr);
  if (world->grid.InBounds(extras.carry_from)) {
    // PutNext*Carrying: the reference moves the object into the hands after its reset; its
    // cur_pos stays the floor cell (carrying_pos), which the verifier's resolution uses.
    world->carrying = world->grid.at(extras.carry_from);
    world->carrying_pos = extras.carry_from;
    world->grid.at(extras.carry_from) = Object{};
    ResolveInstr(*instr, *world);  // as ResetVerifier does on the state after the move
  }
  const RoomLayout& l = config_.layout;
  world->max_steps = config_.fixed_max_steps > 0
                         ? config_.fixed_max_steps
                         : NumNavs(*instr) * l.room_size * l.room_size * l.num_rows * l.num_cols;
}

const std::vector<LevelConfig>& LevelConfigs() {
  static const std::vector<LevelConfig> table = BuildTable();
  return table;
}

const std::vector<LevelInfo>& AllLevels() {
  static const std::vector<LevelInfo> infos = [] {
    std::vector<LevelInfo> v;
    for (const LevelConfig& c : LevelConfigs()) v.push_back({c.id, c.description});
    return v;
  }();
  return infos;
}

const LevelConfig& GetLevelConfig(const std::string& id) {
  const std::vector<LevelConfig>& table = LevelConfigs();
  for (const LevelConfig& c : table) {
    if (c.id == id) return c;
  }
  std::vector<std::pair<int, int>> ranked;  // (distance, table index)
  for (size_t i = 0; i < table.size(); ++i) {
    ranked.emplace_back(EditDistance(id, table[i].id), static_cast<int>(i));
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string msg = "unknown level '" + id + "'; did you mean ";
  for (int k = 0; k < 3 && k < static_cast<int>(ranked.size()); ++k) {
    if (k > 0) msg += ", ";
    msg += table[ranked[k].second].id;
  }
  msg += "? (`skillgrid levels` lists all " + std::to_string(table.size()) + ")";
  throw InputError(msg);
}

std::unique_ptr<Level> MakeLevel(const std::string& id) { return MakeLevel(GetLevelConfig(id)); }

std::unique_ptr<Level> MakeLevel(const LevelConfig& config) {
  using Factory = std::unique_ptr<Level> (*)(const LevelConfig&);
  for (Factory f : {MakeGoToFamilyLevel, MakeOpenPickupFamilyLevel, MakePutNextUnlockFamilyLevel,
                    MakeOtherFamilyLevel, MakeLevelGenFamilyLevel}) {
    if (std::unique_ptr<Level> level = f(config)) return level;
  }
  throw InputError("level " + config.id + ": unknown family " +
                   std::to_string(static_cast<int>(config.family)));
}

}  // namespace skillgrid::envs
