// BabyAI levels: one generator class per level family, built by a factory from a plain config
// (EnvPool's style), and the single-environment wrapper that resets through generation.
//
// Every id registered by Minigrid 3.1 (96 ids, ../shared/reference/babyai-levels.md section 5)
// has a LevelConfig in a plain table (levels.cpp); MakeLevel(id) builds its generator. A config
// may also be edited and passed to MakeLevel(config) to build a variant (another room size,
// more distractors, ...). Generation is a deterministic function of the Rng stream.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "envs/episode.h"
#include "envs/rng.h"

namespace skillgrid::envs {

/// The generator families: one Level class each (Minigrid's class for the id).
enum class LevelFamily : uint8_t {
  kGoToRedBall,          ///< GoToRedBall, GoToRedBallGrey, GoToRedBallNoDists
  kGoToObj,              ///< GoToObj*
  kGoToLocal,            ///< GoToLocal*
  kGoTo,                 ///< GoTo, GoToOpen, GoToObjMaze*
  kGoToImpUnlock,        ///< GoToImpUnlock
  kGoToRedBlueBall,      ///< GoToRedBlueBall
  kGoToDoor,             ///< GoToDoor
  kGoToObjDoor,          ///< GoToObjDoor
  kOpen,                 ///< Open
  kOpenRedDoor,          ///< OpenRedDoor
  kOpenDoor,             ///< OpenDoor, OpenDoorDebug, OpenDoorColor, OpenDoorLoc
  kOpenTwoDoors,         ///< OpenTwoDoors, OpenRedBlueDoors*
  kOpenDoorsOrder,       ///< OpenDoorsOrder*
  kPickup,               ///< Pickup
  kUnblockPickup,        ///< UnblockPickup
  kPickupDist,           ///< PickupDist*
  kPickupAbove,          ///< PickupAbove
  kPutNextLocal,         ///< PutNextLocal*
  kPutNext,              ///< PutNextS*N* (and *Carrying)
  kMoveTwoAcross,        ///< MoveTwoAcross*
  kUnlock,               ///< Unlock
  kUnlockLocal,          ///< UnlockLocal, UnlockLocalDist
  kKeyInBox,             ///< KeyInBox
  kUnlockPickup,         ///< UnlockPickup, UnlockPickupDist
  kBlockedUnlockPickup,  ///< BlockedUnlockPickup
  kUnlockToUnlock,       ///< UnlockToUnlock
  kActionObjDoor,        ///< ActionObjDoor
  kFindObj,              ///< FindObjS5/S6/S7
  kKeyCorridor,          ///< KeyCorridor*
  kOneRoom,              ///< OneRoomS*
  kLevelGen,             ///< GoToSeq*, PickupLoc, Synth*, MiniBossLevel, BossLevel*
};

/// How OpenDoor describes its target door.
enum class SelectBy : uint8_t {
  kRandom,  ///< colour or location, drawn per episode
  kColor,   ///< "open the <colour> door"
  kLoc,     ///< "open the door <location>"
};

/// Bits of LevelGenOptions::action_kinds.
inline constexpr uint8_t kActGoTo = 1, kActPickup = 2, kActOpen = 4, kActPutNext = 8;
/// Bits of LevelGenOptions::instr_kinds.
inline constexpr uint8_t kKindAction = 1, kKindAnd = 2, kKindSeq = 4;

/// LevelGen's options (minigrid/envs/babyai/core/levelgen.py), with its defaults.
struct LevelGenOptions {
  int num_dists = 18;             ///< distractors spread over random rooms
  float locked_room_prob = 0.5f;  ///< chance of one locked room, its key in another room
  bool locations = true;          ///< descriptions may carry a location (half the time)
  bool unblocking = true;         ///< off: every object must be reachable without moving others
  bool implicit_unlock = true;    ///< off: a description must match outside the locked room
  uint8_t action_kinds = kActGoTo | kActPickup | kActOpen | kActPutNext;  ///< action verbs
  uint8_t instr_kinds = kKindAction | kKindAnd | kKindSeq;                ///< instruction shapes
};

/// Everything that distinguishes one registered id from another of its family.
struct LevelConfig {
  std::string id;                                ///< registered id, e.g. "BabyAI-GoToLocal-v0"
  std::string description;                       ///< one line for `skillgrid levels`
  LevelFamily family = LevelFamily::kGoToLocal;  ///< which generator class builds it
  RoomLayout layout{8, 3, 3};                    ///< room size and room grid (rows x cols)
  /// Object count, per family: distractors (GoTo*, Pickup, UnblockPickup, GoToObjDoor, ...),
  /// distractors per room (Unlock, GoToImpUnlock), objects (PutNextLocal, PickupDist),
  /// objects per room (PutNext, MoveTwoAcross), doors (OpenDoorsOrder), optional distractors
  /// (UnlockLocal, UnlockPickup when `distractors`). LevelGen uses gen.num_dists instead.
  int num_objs = 0;
  int fixed_max_steps = 0;        ///< > 0: constant max_steps; 0: num_navs * rs^2 * rows * cols
  bool strict = false;            ///< "Debug" ids: strict Open/Pickup
  bool doors_open = false;        ///< GoTo: open every door after generation
  bool grey_distractors = false;  ///< GoToRedBall: distractors recoloured grey
  bool distractors = false;       ///< UnlockLocal / UnlockPickup: add distractors
  bool start_carrying = false;    ///< PutNext: the agent starts holding the object to move
  SelectBy select_by = SelectBy::kRandom;  ///< OpenDoor
  std::optional<Color> first_color;        ///< OpenTwoDoors: colour of the first door (else drawn)
  std::optional<Color> second_color;       ///< OpenTwoDoors: colour of the second door (else drawn)
  LevelGenOptions gen;                     ///< LevelGen family only
};

/// A level generator: fills a world and its instruction for a new episode.
/// Implementations are deterministic functions of the Rng stream they are given, hold no
/// mutable state, and may be shared between threads.
class Level {
 public:
  virtual ~Level() = default;
  /// The registered id, e.g. "BabyAI-GoToLocal-v0".
  virtual const std::string& id() const = 0;
  /// The config the level was built from.
  virtual const LevelConfig& config() const = 0;
  /// Generates a fresh episode into *world and *instr, reusing their storage (no allocation
  /// once they have held an episode of this level, apart from building the mission text):
  /// grid, rooms, agent pose, mission text, instruction, max_steps (the level's rule),
  /// step_count 0, empty hands unless the level starts carrying. The instruction is left as
  /// ResetVerifier(*instr, *world) leaves it (resolved at the start state, fresh verifier
  /// state), so the pair can be stepped at once (BabyAIEnv does so without Episode::Start).
  virtual void Generate(Rng& rng, WorldState* world, Instr* instr) const = 0;
};

/// One registered level id and a one-line description of it.
struct LevelInfo {
  std::string id;           ///< e.g. "BabyAI-GoToLocal-v0"
  std::string description;  ///< one line, e.g. "go to one of 8 objects in one 8x8 room"
};

/// Every registered BabyAI level (96 ids, as in Minigrid 3.1), in the reference table's order.
const std::vector<LevelInfo>& AllLevels();

/// The config of a registered id. Throws InputError for an unknown id, naming the closest
/// valid ids ("unknown level 'BabyAI-GoToLocl-v0'; did you mean BabyAI-GoToLocal-v0, ...?").
const LevelConfig& GetLevelConfig(const std::string& id);

/// Builds the generator of a level id. Throws InputError for an unknown id (as GetLevelConfig).
std::unique_ptr<Level> MakeLevel(const std::string& id);

/// Builds a generator from a config (a registered one or a variant). Throws InputError for a
/// config the family cannot build (bad layout, too many objects, missing options).
std::unique_ptr<Level> MakeLevel(const LevelConfig& config);

/// A single BabyAI environment: a level generator plus an episode in progress. Resets generate
/// straight into the episode's own world and instruction (no copies, no allocation in the
/// steady state apart from building the mission text).
class BabyAIEnv {
 public:
  /// Throws InputError for an unknown level id.
  explicit BabyAIEnv(const std::string& level_id);
  /// Wraps a generator (e.g. one built from an edited config).
  explicit BabyAIEnv(std::unique_ptr<Level> level);

  /// Starts a new episode. The same seed gives the same episode, whatever came before.
  void Reset(uint64_t seed);
  /// Starts a new episode continuing the env's own random stream (seeded 0 at construction,
  /// reseeded by Reset(seed)): a fixed sequence of episodes after any given Reset(seed).
  void Reset();

  /// Applies one action.
  StepResult Step(Action action) { return episode_.Step(action); }
  /// Writes the egocentric observation (7x7x3 by default).
  void Observe(uint8_t* image) const { episode_.Observe(image); }

  const Episode& episode() const { return episode_; }
  const WorldState& world() const { return episode_.world(); }
  const Level& level() const { return *level_; }

 private:
  std::unique_ptr<Level> level_;
  Rng rng_;
  Episode episode_;
};

}  // namespace skillgrid::envs
