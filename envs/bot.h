// The BabyAI expert bot (the reference's minigrid/utils/baby_ai_bot.py, rewritten): a stack of
// subgoals derived from the instruction tree, planned by breadth-first search over the cells the
// agent has seen, with exploration, unblocking (moving objects out of the way), safe drop spots
// and fetching keys for locked doors. See ../shared/reference/babyai-levels.md section 7.
//
// Typical use, one episode:
//   Bot bot(episode);                    // after episode.Start(...) / env.Reset(seed)
//   Action a = bot.Replan(std::nullopt);   // first action
//   while (!bot.failed()) {
//     StepResult r = episode.Step(a);      // or any other action: tell the bot below
//     if (r.terminated || r.truncated) break;
//     a = bot.Replan(a);                   // the action that was actually taken
//   }
// RunBotEpisode does exactly this (with optional random actions and trace recording).
//
// The bot reads the instruction tree and the true grid but plans only over cells it has seen.
// It never throws: a situation it cannot handle (a box was opened by someone else, nothing left
// to explore, ...) is reported through status() and the bot then answers kDone.
//
// Departures from the reference, each fixing episodes it fails:
// - starting with the object to move in hand (PutNext*Carrying), the first fetch is skipped,
//   and a drop on the very first step (which the verifier does not credit) waits one step;
// - exploration never heads for a locked door whose key is neither held nor in sight (the
//   reference loops forever there), and as a last resort opens seen boxes (KeyInBox);
// - a Drop facing a taken cell goes to another spot, a Pickup facing nothing drops the plan to
//   carry it, and with no free cell in sight a blocker is dropped where the agent stood;
// - drop spots keep off cells blockers were cleared from and, when they can, off doorways;
// - under a strict instruction, the bot looks around before moving a blocker.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "envs/episode.h"
#include "envs/rng.h"
#include "envs/world.h"

namespace skillgrid::envs {

/// Whether the bot is still planning, and if not, why it gave up.
enum class BotStatus : uint8_t {
  kOk = 0,            ///< planning normally
  kBoxOpened,         ///< a box was toggled open unplanned (the reference's DisappearedBoxError)
  kNothingToExplore,  ///< the target is unknown and no unseen cell or closed door is left
  kNoDropSpot,        ///< no free seen cell to put an object down
  kInvalidState,      ///< a subgoal met a state it cannot handle (the reference's assertions)
  kNoProgress,        ///< replanning did not settle on an action (loop guard)
};

/// Lower-case snake-case name: "ok", "box_opened", "nothing_to_explore", "no_drop_spot",
/// "invalid_state", "no_progress".
std::string_view BotStatusName(BotStatus status);

/// The expert bot for one episode. It keeps a pointer to the episode it was reset with, which
/// must outlive it and be stepped only between calls to Replan. Storage is reused across Reset.
class Bot {
 public:
  /// Kinds of subgoals (plain data on a stack; top = back of the vector).
  /// kOpenBox (not in the reference) toggles a box in front: the last resort of exploration
  /// when a needed key is nowhere to be seen (KeyInBox).
  enum class SubgoalKind : uint8_t { kGoNextTo, kOpen, kClose, kPickup, kDrop, kExplore, kOpenBox };

  /// One subgoal. `reason` is a GoReason for kGoNextTo and an OpenReason for kOpen.
  struct Subgoal {
    SubgoalKind kind = SubgoalKind::kExplore;  ///< what to do
    uint8_t reason = 0;                        ///< why (see above; 0 = no particular reason)
    uint8_t target = 0;                        ///< GoNextTo: a TargetKind (bot.cpp)
    uint8_t arg = 0;  ///< GoNextTo: description index or key colour, by target kind
    Pos pos;          ///< GoNextTo: target position, for position and door targets
  };

  Bot() = default;
  /// Equivalent to Reset(episode).
  explicit Bot(const Episode& episode) { Reset(episode); }

  /// Starts planning for `episode`, which must be at its start state (verifier reset, so the
  /// instruction's descriptions are resolved). Clears the seen mask and the plan.
  void Reset(const Episode& episode);

  /// The reference's replan: updates the seen mask from the agent's current view, adapts the
  /// plan to `last_action` (the action actually applied since the previous call; nullopt on the
  /// first call or when the bot's own suggestion was applied) and returns the next action.
  /// Returns kDone once the plan is empty or after a failure (see status()).
  Action Replan(std::optional<Action> last_action);

  /// Replan assuming the bot's previous suggestion was applied (nullopt on the first call).
  Action Act() { return Replan(has_suggested_ ? std::optional<Action>(suggested_) : std::nullopt); }

  /// kOk while planning; otherwise why the bot gave up (it then stays in that state).
  BotStatus status() const { return status_; }
  /// True once the bot has given up (status() != kOk).
  bool failed() const { return status_ != BotStatus::kOk; }

  /// Cells seen so far, row-major (y * width + x), 1 = seen.
  const std::vector<uint8_t>& seen() const { return seen_; }
  /// The current plan, bottom first.
  const std::vector<Subgoal>& stack() const { return stack_; }
  /// The plan as text, top first, e.g. "GoNextTo(desc 0) Pickup Drop" (for debugging).
  std::string DescribeStack() const;

 private:
  // A shortest-path search result (the reference's _shortest_path).
  struct PathResult {
    bool found = false;          // some cell satisfied the acceptance test
    Pos finish;                  // that cell
    Pos first;                   // first cell of the path after the agent's (if length > 0)
    int length = 0;              // moves from the agent to `finish`
    bool with_blockers = false;  // the path crosses objects
  };
  // A resolved description target (the reference's _find_obj_pos).
  struct ObjTarget {
    bool found = false;
    Pos pos;
    const Object* obj = nullptr;
  };

  // One step of the reference's replan_before_action loop: true with *action set when the top
  // subgoal suggests an action; false when the stack changed (or the bot failed).
  bool BeforeAction(Action* action);
  bool GoNextToBefore(const Subgoal& sg, Action* action);
  bool OpenBefore(const Subgoal& sg, Action* action);
  bool ExploreBefore(Action* action);
  // A turn towards a direction not yet looked in from the current cell.
  Action LookAroundAction() const;
  void AfterAction(std::optional<Action> action);
  void PlanUndo(Action action);

  void UpdateSeen();
  void RememberState();
  void Fail(BotStatus status);
  void Push(const Subgoal& sg);
  void PushGoTo(Pos pos, uint8_t reason = 0);
  void PushSimple(SubgoalKind kind, uint8_t reason = 0);

  // Pushes the subgoals of instruction node `node_index` (the reference's _process_instr).
  void ProcessInstr(int node_index);
  static bool IsExploratory(const Subgoal& sg);

  // Breadth-first search in the reference's neighbour order (straight, the two sides, back),
  // pass 1 (blockers stop it) or pass 2 (blockers passable), from seeds already in the pass's
  // order array. `accept` is a functor (Pos, const Object&) -> bool checked as cells are taken
  // from the queue. Returns the accepted cell (or -1); visited_ = cells reached.
  template <typename Accept>
  int Bfs(int pass, int num_seeds, bool ignore_blockers, Accept accept, bool stop_at_accept);
  void NewStamp(int pass);
  void SeedPass1();               // the agent's cell, facing its direction
  void SeedPass2(int num_pass1);  // every cell pass 1 reached, in order, facing right
  // The reference's _shortest_path: pass 1, then (if allowed and needed) pass 2.
  template <typename Accept>
  PathResult ShortestPath(Accept accept, bool try_with_blockers);
  PathResult BuildPath(int finish_cell, bool second_pass) const;
  ObjTarget FindObjPos(const Subgoal& sg, bool adjacent);
  bool FindDropPos(std::optional<Pos> except, Pos* out);
  int ClosestWallOrDoor(Pos dir) const;
  // Positions of the description's objects (skipping walls and the carried object).
  void DescPositions(const Subgoal& sg, std::vector<Pos>* out);

  int Cell(Pos p) const { return p.y * width_ + p.x; }
  Pos CellPos(int c) const { return {c % width_, c / width_}; }
  bool InGrid(Pos p) const { return p.x >= 0 && p.y >= 0 && p.x < width_ && p.y < height_; }
  bool Seen(Pos p) const { return InGrid(p) && seen_[Cell(p)] != 0; }

  const Episode* episode_ = nullptr;
  int width_ = 0;
  int height_ = 0;
  BotStatus status_ = BotStatus::kOk;
  std::vector<uint8_t> seen_;
  // Cells a blocker was moved away from (drop spots avoid them when they can).
  std::vector<uint8_t> cleared_;
  bool any_cleared_ = false;
  // Directions looked in (bit per direction) from look_pos_, the agent's current cell.
  Pos look_pos_{-1, -1};
  uint8_t looked_dirs_ = 0;
  std::vector<Subgoal> stack_;

  // Instruction descriptions: identities of each description's objects (walls left out) and a
  // cache of where each one was last found.
  struct DescRange {
    int begin = 0;
    int count = 0;
  };
  std::vector<DescRange> descs_;
  std::vector<uint16_t> desc_ids_;
  std::vector<Pos> desc_pos_cache_;
  std::vector<int> id_cells_;  // Reset scratch: identity -> flat cell
  std::vector<Pos> scratch_poss_;

  // The reference's _remember_current_state.
  Pos prev_agent_pos_;
  uint16_t prev_carrying_id_ = 0;
  bool fwd_door_was_open_ = false;
  bool prev_fwd_was_box_ = false;
  bool box_toggle_planned_ = false;  // the last suggestion toggles a box on purpose
  bool strict_ = false;              // some part of the instruction is strict
  bool started_carrying_ = false;    // the episode started with an object in hand
  bool has_suggested_ = false;
  Action suggested_ = Action::kDone;

  // BFS scratch, per pass: visit order, parents, depths, stamped marks; pass 2 also records
  // which pass-1 cell each path started from.
  std::vector<int> order1_, order2_, parent1_, parent2_, depth1_, depth2_, root2_, queue_dir_;
  std::vector<uint32_t> mark1_, mark2_;
  uint32_t stamp1_ = 0, stamp2_ = 0;
  int visited_ = 0;

  // Observation scratch for the seen mask.
  static constexpr int kMaxView = 31;
  std::array<uint8_t, kMaxView * kMaxView * 3> obs_image_{};
  std::array<bool, kMaxView * kMaxView> obs_visible_{};
};

/// What one bot-driven episode did.
struct BotEpisodeResult {
  bool success = false;                   ///< some step paid a positive reward
  float reward = 0.0f;                    ///< the final step's reward
  int steps = 0;                          ///< steps taken
  bool terminated = false;                ///< the last step terminated the episode
  bool truncated = false;                 ///< the last step truncated it
  BotStatus bot_status = BotStatus::kOk;  ///< the bot's status at the end
};

/// Runs the bot on `episode` (at its start state) until the episode terminates or truncates or
/// the bot fails. With probability p_random a step takes a uniformly random action drawn from
/// `rng` instead (the bot is told, as in the reference's advice mode). If `trace` is not null it
/// receives the conformance-trace fields `initial`, `initial_obs` and `steps`
/// (../shared/conformance/README.md); the caller adds `level`, `seed` and `p_random`.
BotEpisodeResult RunBotEpisode(Episode& episode, Bot& bot, double p_random, Rng& rng,
                               nlohmann::json* trace = nullptr);

}  // namespace skillgrid::envs
