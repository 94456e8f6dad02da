#include "envs/bot.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace skillgrid::envs {

namespace {

using SubgoalKind = Bot::SubgoalKind;

// What a GoNextTo subgoal goes to.
enum TargetKind : uint8_t {
  kTargetPos = 0,   // a position (pos)
  kTargetDoor = 1,  // the door at pos (the reference's object datum)
  kTargetDesc = 2,  // an instruction description (arg = node * 2 + slot)
  kTargetKey = 3,   // any key of colour arg (the reference's ObjDesc("key", colour))
};

// Why a GoNextTo subgoal exists.
enum GoReason : uint8_t { kGoNone = 0, kGoPutNext = 1, kGoOpen = 2, kGoExplore = 3 };

// Why an Open subgoal exists.
enum OpenReason : uint8_t { kOpenNone = 0, kOpenUnlock = 1, kOpenKeepKey = 2 };

// Loop guards: replan_before_action iterations per step, and plan depth.
constexpr int kMaxIterations = 256;
constexpr size_t kMaxStack = 1024;

int Manhattan(Pos a, Pos b) { return std::abs(a.x - b.x) + std::abs(a.y - b.y); }
Pos Add(Pos a, Pos b) { return {a.x + b.x, a.y + b.y}; }
Pos Sub(Pos a, Pos b) { return {a.x - b.x, a.y - b.y}; }
Pos Neg(Pos a) { return {-a.x, -a.y}; }

// Minigrid's steppable test in the bot: an empty cell or an open door.
bool Steppable(const Object& o) { return o.empty() || o.is_open_door(); }

int NumDescs(InstrKind k) {
  if (k == InstrKind::kPutNext) return 2;
  return IsActionKind(k) ? 1 : 0;
}

// Direction codes stored in the BFS queue: a unit vector packed as (dx + 1) | (dy + 1) << 2.
inline int PackDir(int dx, int dy) { return (dx + 1) | ((dy + 1) << 2); }
inline int DirX(int code) { return (code & 3) - 1; }
inline int DirY(int code) { return (code >> 2) - 1; }

}  // namespace

std::string_view BotStatusName(BotStatus status) {
  switch (status) {
    case BotStatus::kOk:
      return "ok";
    case BotStatus::kBoxOpened:
      return "box_opened";
    case BotStatus::kNothingToExplore:
      return "nothing_to_explore";
    case BotStatus::kNoDropSpot:
      return "no_drop_spot";
    case BotStatus::kInvalidState:
      return "invalid_state";
    case BotStatus::kNoProgress:
      return "no_progress";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Set-up.

void Bot::Reset(const Episode& episode) {
  episode_ = &episode;
  const WorldState& w = episode.world();
  width_ = w.grid.width();
  height_ = w.grid.height();
  const int n = width_ * height_;
  status_ = BotStatus::kOk;
  seen_.assign(n, 0);
  cleared_.assign(n, 0);
  look_pos_ = {-1, -1};
  looked_dirs_ = 0;
  any_cleared_ = false;
  stack_.clear();
  has_suggested_ = false;
  suggested_ = Action::kDone;
  prev_agent_pos_ = w.agent_pos;
  prev_carrying_id_ = w.carrying.empty() ? 0 : w.carrying.id;
  started_carrying_ = !w.carrying.empty();
  fwd_door_was_open_ = false;
  prev_fwd_was_box_ = false;

  order1_.resize(n);
  order2_.resize(n);
  parent1_.resize(n);
  parent2_.resize(n);
  queue_dir_.resize(n);
  depth1_.resize(n);
  depth2_.resize(n);
  root2_.resize(n);
  if (static_cast<int>(mark1_.size()) != n) {
    mark1_.assign(n, 0);
    mark2_.assign(n, 0);
    stamp1_ = stamp2_ = 0;
  }

  // Each description's objects by identity, walls left out (the reference skips them), with the
  // cell each one is on now (or (-1, -1) if it is carried).
  const Instr& instr = episode.instr();
  id_cells_.assign(w.next_id, -1);  // identity -> flat cell (-1: not on the grid)
  for (int y = 0; y < height_; ++y) {
    for (int x = 0; x < width_; ++x) {
      const Object& o = w.grid.at(x, y);
      if (!o.empty() && o.id < id_cells_.size()) id_cells_[o.id] = y * width_ + x;
    }
  }
  descs_.assign(2 * Instr::kMaxNodes, DescRange{});
  desc_ids_.clear();
  desc_pos_cache_.clear();
  strict_ = false;
  for (int i = 0; i < instr.num_nodes; ++i) {
    const InstrNode& node = instr.nodes[i];
    if (node.strict) strict_ = true;
    for (int k = 0; k < NumDescs(node.kind); ++k) {
      DescRange& range = descs_[i * 2 + k];
      range.begin = static_cast<int>(desc_ids_.size());
      for (uint16_t id : instr.ObjSet(node.desc[k])) {
        const int cell = id < id_cells_.size() ? id_cells_[id] : -1;
        const Pos where = cell >= 0 ? CellPos(cell) : Pos{-1, -1};
        if (cell >= 0 && w.grid.at(where).type == ObjectType::kWall) continue;
        desc_ids_.push_back(id);
        desc_pos_cache_.push_back(where);
      }
      range.count = static_cast<int>(desc_ids_.size()) - range.begin;
    }
  }
  if (instr.num_nodes > 0) ProcessInstr(0);

  // Starting with the object to move already in hand (PutNext*Carrying): the first fetch of a
  // PutNext is done. (The reference bot does not do this and fails those levels.)
  if (!w.carrying.empty() && stack_.size() >= 2) {
    const Subgoal& top = stack_.back();
    const Subgoal& below = stack_[stack_.size() - 2];
    if (top.kind == SubgoalKind::kGoNextTo && top.target == kTargetDesc && top.arg % 2 == 0 &&
        instr.nodes[top.arg / 2].kind == InstrKind::kPutNext &&
        below.kind == SubgoalKind::kPickup) {
      const DescRange& range = descs_[top.arg];
      for (int k = range.begin; k < range.begin + range.count; ++k) {
        if (desc_ids_[k] == w.carrying.id) {
          stack_.resize(stack_.size() - 2);
          break;
        }
      }
    }
  }
}

void Bot::ProcessInstr(int node_index) {
  const InstrNode& node = episode_->instr().nodes[node_index];
  const auto desc = [&](int slot, uint8_t reason) {
    Subgoal sg;
    sg.kind = SubgoalKind::kGoNextTo;
    sg.reason = reason;
    sg.target = kTargetDesc;
    sg.arg = static_cast<uint8_t>(node_index * 2 + slot);
    Push(sg);
  };
  switch (node.kind) {
    case InstrKind::kGoTo:
      desc(0, kGoNone);
      return;
    case InstrKind::kOpen:
      PushSimple(SubgoalKind::kOpen);
      desc(0, kGoOpen);
      return;
    case InstrKind::kPickup:
      // Pick up and drop again at once, so that later parts may carry something else.
      PushSimple(SubgoalKind::kDrop);
      PushSimple(SubgoalKind::kPickup);
      desc(0, kGoNone);
      return;
    case InstrKind::kPutNext:
      PushSimple(SubgoalKind::kDrop);
      desc(1, kGoPutNext);
      PushSimple(SubgoalKind::kPickup);
      desc(0, kGoNone);
      return;
    case InstrKind::kBefore:
    case InstrKind::kAnd:
      ProcessInstr(node.b);
      ProcessInstr(node.a);
      return;
    case InstrKind::kAfter:
      ProcessInstr(node.a);
      ProcessInstr(node.b);
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// The replanning loop.

Action Bot::Replan(std::optional<Action> last_action) {
  if (status_ != BotStatus::kOk || episode_ == nullptr) return Action::kDone;
  UpdateSeen();
  // A toggled box disappears with its contents, which the plan cannot account for.
  if (last_action && *last_action == Action::kToggle && prev_fwd_was_box_ && !box_toggle_planned_) {
    Fail(BotStatus::kBoxOpened);
    return Action::kDone;
  }
  box_toggle_planned_ = false;
  if (!stack_.empty()) AfterAction(last_action);
  if (failed()) return Action::kDone;
  while (!stack_.empty() && IsExploratory(stack_.back())) stack_.pop_back();

  Action action = Action::kDone;
  bool have_action = false;
  for (int iter = 0; !stack_.empty(); ++iter) {
    if (iter >= kMaxIterations || stack_.size() > kMaxStack) {
      Fail(BotStatus::kNoProgress);
      return Action::kDone;
    }
    if (BeforeAction(&action)) {
      have_action = true;
      break;
    }
    if (failed()) return Action::kDone;
  }
  if (!have_action) action = Action::kDone;
  // The verifier learns what is held only by verifying a step, so a PutNext drop on the very
  // first step of an episode that starts carrying is not credited: wait one step (done is a
  // no-op) first.
  if (!has_suggested_ && action == Action::kDrop && started_carrying_) action = Action::kDone;
  RememberState();
  has_suggested_ = true;
  suggested_ = action;
  return action;
}

bool Bot::IsExploratory(const Subgoal& sg) {
  return sg.kind == SubgoalKind::kExplore ||
         (sg.kind == SubgoalKind::kGoNextTo && sg.reason == kGoExplore);
}

void Bot::UpdateSeen() {
  const WorldState& w = episode_->world();
  if (w.agent_pos != look_pos_) {
    look_pos_ = w.agent_pos;
    looked_dirs_ = 0;
  }
  looked_dirs_ |= static_cast<uint8_t>(1u << w.agent_dir);
  const int v = std::min(w.agent_view_size, kMaxView);
  Observe(w, obs_image_.data(), obs_visible_.data());
  for (int i = 0; i < v; ++i) {
    for (int j = 0; j < v; ++j) {
      if (!obs_visible_[i * v + j]) continue;
      const Pos p = ViewToWorld(w, i, j);
      if (InGrid(p)) seen_[Cell(p)] = 1;
    }
  }
}

void Bot::RememberState() {
  const WorldState& w = episode_->world();
  prev_agent_pos_ = w.agent_pos;
  prev_carrying_id_ = w.carrying.empty() ? 0 : w.carrying.id;
  const Object& fwd = w.grid.at(w.FrontPos());
  if (fwd.is_door()) fwd_door_was_open_ = fwd.is_open_door();
  prev_fwd_was_box_ = fwd.type == ObjectType::kBox;
}

void Bot::Fail(BotStatus status) {
  if (status_ == BotStatus::kOk) status_ = status;
}

void Bot::Push(const Subgoal& sg) { stack_.push_back(sg); }

void Bot::PushGoTo(Pos pos, uint8_t reason) {
  Subgoal sg;
  sg.kind = SubgoalKind::kGoNextTo;
  sg.reason = reason;
  sg.target = kTargetPos;
  sg.pos = pos;
  Push(sg);
}

void Bot::PushSimple(SubgoalKind kind, uint8_t reason) {
  Subgoal sg;
  sg.kind = kind;
  sg.reason = reason;
  Push(sg);
}

void Bot::AfterAction(std::optional<Action> action) {
  const Subgoal top = stack_.back();
  const bool none = !action.has_value();
  const Action a = none ? Action::kDone : *action;
  const bool move = a == Action::kForward || a == Action::kLeft || a == Action::kRight;
  switch (top.kind) {
    case SubgoalKind::kClose:
      if (none || a == Action::kToggle) {
        stack_.pop_back();
      } else if (move) {
        PlanUndo(a);
      }
      return;
    case SubgoalKind::kOpen:
      if (none || a == Action::kToggle) {
        stack_.pop_back();
        if (top.reason == kOpenUnlock) {
          // Chosen only now: a spot picked in advance might be taken by the time we get there.
          Pos drop;
          if (!FindDropPos(std::nullopt, &drop)) {
            Fail(BotStatus::kNoDropSpot);
            return;
          }
          PushSimple(SubgoalKind::kDrop);
          PushGoTo(drop);
        }
      } else {
        PlanUndo(a);
      }
      return;
    case SubgoalKind::kDrop:
      if (none || a == Action::kDrop) {
        stack_.pop_back();
      } else if (move) {
        PlanUndo(a);
      }
      return;
    case SubgoalKind::kPickup:
      if (none || a == Action::kPickup) {
        stack_.pop_back();
      } else if (a == Action::kLeft || a == Action::kRight) {
        PlanUndo(a);
      }
      return;
    case SubgoalKind::kGoNextTo:
      if (a == Action::kPickup || a == Action::kDrop || a == Action::kToggle) PlanUndo(a);
      return;
    case SubgoalKind::kExplore:
      return;
    case SubgoalKind::kOpenBox:
      if (none || a == Action::kToggle) {
        stack_.pop_back();
      } else if (a == Action::kPickup) {
        PlanUndo(a);  // put the box back down first
      }
      return;
  }
}

void Bot::PlanUndo(Action action) {
  const WorldState& w = episode_->world();
  const Pos pos = w.agent_pos;
  const Pos dv = DirVec(w.agent_dir);
  const Pos rv{-dv.y, dv.x};
  const Object& fwd = w.grid.at(w.FrontPos());
  const uint16_t carrying_id = w.carrying.empty() ? 0 : w.carrying.id;
  switch (action) {
    case Action::kForward:
      if (prev_agent_pos_ != pos) PushGoTo(pos);
      return;
    case Action::kLeft:
      PushGoTo(Add(pos, rv));
      return;
    case Action::kRight:
      PushGoTo(Sub(pos, rv));
      return;
    case Action::kDrop:
      if (prev_carrying_id_ != carrying_id) {
        // Take back what was dropped.
        if (!fwd.can_pickup()) {
          Fail(BotStatus::kInvalidState);
          return;
        }
        PushSimple(SubgoalKind::kPickup);
      }
      return;
    case Action::kPickup:
      if (prev_carrying_id_ != carrying_id) PushSimple(SubgoalKind::kDrop);
      return;
    case Action::kToggle:
      if (fwd.is_door() && fwd_door_was_open_ != fwd.is_open_door()) {
        PushSimple(fwd.is_open_door() ? SubgoalKind::kClose : SubgoalKind::kOpen);
      }
      return;
    case Action::kDone:
      return;
  }
}

bool Bot::BeforeAction(Action* action) {
  const Subgoal top = stack_.back();
  const WorldState& w = episode_->world();
  const Object& fwd = w.grid.at(w.FrontPos());
  switch (top.kind) {
    case SubgoalKind::kClose:
      if (!fwd.is_open_door()) {
        Fail(BotStatus::kInvalidState);
        return false;
      }
      *action = Action::kToggle;
      return true;
    case SubgoalKind::kOpen:
      return OpenBefore(top, action);
    case SubgoalKind::kDrop:
      // Robustness beyond the reference (which asserts): plans made earlier can go stale when
      // nested unblocking moves objects onto planned spots.
      if (w.carrying.empty()) {  // nothing to drop
        stack_.pop_back();
        return false;
      }
      if (!fwd.empty()) {  // the spot got taken: go to another one first
        Pos drop;
        if (!FindDropPos(std::nullopt, &drop)) {
          Fail(BotStatus::kNoDropSpot);
          return false;
        }
        PushGoTo(drop);
        return false;
      }
      *action = Action::kDrop;
      return true;
    case SubgoalKind::kPickup:
      if (!w.carrying.empty()) {
        Fail(BotStatus::kInvalidState);
        return false;
      }
      if (!fwd.can_pickup()) {
        // The object is gone (moved by an earlier part of the plan): skip carrying it to its
        // drop spot as well.
        stack_.pop_back();
        const size_t n = stack_.size();
        if (n >= 1 && stack_[n - 1].kind == SubgoalKind::kDrop) {
          stack_.pop_back();
        } else if (n >= 2 && stack_[n - 1].kind == SubgoalKind::kGoNextTo &&
                   stack_[n - 1].target == kTargetPos && stack_[n - 1].reason == kGoNone &&
                   stack_[n - 2].kind == SubgoalKind::kDrop) {
          stack_.resize(n - 2);
        }
        return false;
      }
      *action = Action::kPickup;
      return true;
    case SubgoalKind::kGoNextTo:
      return GoNextToBefore(top, action);
    case SubgoalKind::kExplore:
      return ExploreBefore(action);
    case SubgoalKind::kOpenBox:
      if (fwd.type != ObjectType::kBox) {  // gone (moved, or we were moved): explore again
        stack_.pop_back();
        return false;
      }
      box_toggle_planned_ = true;
      *action = Action::kToggle;
      return true;
  }
  return false;
}

bool Bot::OpenBefore(const Subgoal& sg, Action* action) {
  const WorldState& w = episode_->world();
  const Pos fwd_pos = w.FrontPos();
  const Object& fwd = w.grid.at(fwd_pos);
  if (!fwd.is_door()) {
    Fail(BotStatus::kInvalidState);
    return false;
  }
  const bool got_the_key = w.carrying.type == ObjectType::kKey && w.carrying.color == fwd.color;
  if (fwd.is_locked_door() && !got_the_key) {
    // Fetch the key, then come back to this door.
    Subgoal key;
    key.kind = SubgoalKind::kGoNextTo;
    key.target = kTargetKey;
    key.arg = static_cast<uint8_t>(fwd.color);
    if (!w.carrying.empty()) {
      stack_.pop_back();
      Pos drop_cur;
      if (!FindDropPos(std::nullopt, &drop_cur)) {
        Fail(BotStatus::kNoDropSpot);
        return false;
      }
      // Take back the load afterwards.
      PushSimple(SubgoalKind::kPickup);
      PushGoTo(drop_cur);
      // Go back to the door and open it.
      PushSimple(SubgoalKind::kOpen);
      PushGoTo(fwd_pos);
      // Fetch the key.
      PushSimple(SubgoalKind::kPickup);
      Push(key);
      // Put the load down first.
      PushSimple(SubgoalKind::kDrop);
      PushGoTo(drop_cur);
    } else {
      stack_.pop_back();
      PushSimple(SubgoalKind::kOpen);
      PushGoTo(fwd_pos);
      PushSimple(SubgoalKind::kPickup);
      Push(key);
    }
    return false;
  }
  if (fwd.is_open_door()) {
    PushSimple(SubgoalKind::kClose);
    return false;
  }
  if (fwd.is_locked_door() && sg.reason == kOpenNone) {
    // Unlocking with a fetched key: drop the key once the door is open.
    stack_.pop_back();
    PushSimple(SubgoalKind::kOpen, kOpenUnlock);
    return false;
  }
  *action = Action::kToggle;
  return true;
}

bool Bot::GoNextToBefore(const Subgoal& sg, Action* action) {
  const WorldState& w = episode_->world();
  const Grid& g = w.grid;
  const Pos pos = w.agent_pos;
  const Pos dv = DirVec(w.agent_dir);
  const Pos rv{-dv.y, dv.x};
  const Pos fwd_pos = Add(pos, dv);
  const Object& fwd = g.at(fwd_pos);
  const bool put_next = sg.reason == kGoPutNext;

  Pos target;
  const Object* target_obj = nullptr;
  if (sg.target == kTargetDesc || sg.target == kTargetKey) {
    const ObjTarget t = FindObjPos(sg, put_next);
    if (!t.found) {
      PushSimple(SubgoalKind::kExplore);
      return false;
    }
    target = t.pos;
    target_obj = t.obj;
  } else if (sg.target == kTargetDoor) {
    target = sg.pos;
    target_obj = &g.at(target);
  } else {
    target = sg.pos;
  }

  // Going to open a locked door with empty hands: fetch its key first, committing to this door.
  if (sg.reason == kGoOpen && target_obj != nullptr && target_obj->is_locked_door() &&
      w.carrying.empty()) {
    const Color color = target_obj->color;
    stack_.pop_back();
    Subgoal door;
    door.kind = SubgoalKind::kGoNextTo;
    door.reason = kGoOpen;
    door.target = kTargetDoor;
    door.pos = target;
    Push(door);
    PushSimple(SubgoalKind::kPickup);
    Subgoal key;
    key.kind = SubgoalKind::kGoNextTo;
    key.target = kTargetKey;
    key.arg = static_cast<uint8_t>(color);
    Push(key);
    return false;
  }

  // Standing on the cell to face (or, for PutNext, next to the fixed object): step away.
  if (Manhattan(target, pos) == (put_next ? 1 : 0)) {
    if (Steppable(fwd)) {
      *action = Action::kForward;
    } else if (Steppable(g.at(Add(pos, rv)))) {
      *action = Action::kRight;
    } else if (Steppable(g.at(Sub(pos, rv)))) {
      *action = Action::kLeft;
    } else {
      *action = Action::kLeft;  // spin and hope
    }
    return true;
  }

  // Facing the target cell: done.
  if (put_next) {
    if (Manhattan(target, fwd_pos) == 1) {
      if (fwd.empty()) {
        stack_.pop_back();
        return false;
      }
      if (fwd.is_open_door()) {
        // Nothing can be dropped on a door: stand elsewhere.
        PushGoTo(Add(fwd_pos, {2 * dv.x, 2 * dv.y}));
        return false;
      }
    }
  } else if (target == fwd_pos) {
    stack_.pop_back();
    return false;
  }

  // Still far: a path without blockers, else one through blockers, else explore.
  const auto at_target = [target](Pos p, const Object&) { return p == target; };
  PathResult path = ShortestPath(at_target, false);
  if (!path.found || path.length == 0) path = ShortestPath(at_target, true);
  if (!path.found || path.length == 0) {
    PushSimple(SubgoalKind::kExplore);
    return false;
  }

  if (path.with_blockers && strict_ && looked_dirs_ != 0xF) {
    // A strict instruction fails on picking up anything else: before moving a blocker, look
    // around from here for a target that needs none (not in the reference).
    *action = LookAroundAction();
    return true;
  }

  const Pos next = path.first;
  if (next == fwd_pos) {
    if (fwd.empty()) {
      *action = Action::kForward;
      return true;
    }
    if (fwd.is_door()) {
      if (fwd.is_locked_door()) {
        Fail(BotStatus::kInvalidState);
        return false;
      }
      if (!fwd.is_open_door()) {
        PushSimple(SubgoalKind::kOpen);
        return false;
      }
      *action = Action::kForward;
      return true;
    }
    // An object blocks the way: move it aside.
    cleared_[Cell(fwd_pos)] = 1;
    any_cleared_ = true;
    if (!w.carrying.empty()) {
      Pos drop_cur, drop_block;
      if (!FindDropPos(std::nullopt, &drop_cur) || !FindDropPos(drop_cur, &drop_block)) {
        Fail(BotStatus::kNoDropSpot);
        return false;
      }
      // Take back the load.
      PushSimple(SubgoalKind::kPickup);
      PushGoTo(drop_cur);
      // Move the blocker.
      PushSimple(SubgoalKind::kDrop);
      PushGoTo(drop_block);
      PushSimple(SubgoalKind::kPickup);
      PushGoTo(fwd_pos);
      // Put the load down.
      PushSimple(SubgoalKind::kDrop);
      PushGoTo(drop_cur);
    } else {
      // No free cell in sight (a room full of objects): step into the blocker's cell once it
      // is picked up and drop it where we stand now (not in the reference).
      Pos drop = pos;
      FindDropPos(std::nullopt, &drop);
      PushSimple(SubgoalKind::kDrop);
      PushGoTo(drop);
      PushSimple(SubgoalKind::kPickup);
    }
    return false;
  }

  // Turn towards the next cell.
  const Pos step = Sub(next, pos);
  if (step == rv) {
    *action = Action::kRight;
    return true;
  }
  if (step == Neg(rv)) {
    *action = Action::kLeft;
    return true;
  }
  // The next cell is behind: turn towards the side whose nearest wall or door is farther.
  const int distance_right = ClosestWallOrDoor(rv);
  const int distance_left = ClosestWallOrDoor(Neg(rv));
  *action = distance_left > distance_right ? Action::kLeft : Action::kRight;
  return true;
}

Action Bot::LookAroundAction() const {
  // Turn towards a direction not looked in yet (left unless only the right one is new).
  const int dir = episode_->world().agent_dir;
  const bool left_done = (looked_dirs_ >> ((dir + 3) & 3) & 1) != 0;
  const bool right_done = (looked_dirs_ >> ((dir + 1) & 3) & 1) != 0;
  return left_done && !right_done ? Action::kRight : Action::kLeft;
}

bool Bot::ExploreBefore(Action* action) {
  const WorldState& w = episode_->world();
  // The nearest unseen cell.
  const PathResult unseen = ShortestPath([this](Pos p, const Object&) { return !Seen(p); }, true);
  if (unseen.found && unseen.with_blockers && strict_ && looked_dirs_ != 0xF) {
    // Under a strict instruction, moving objects to explore fails the episode: look around
    // from here first (not in the reference).
    *action = LookAroundAction();
    return true;
  }
  if (unseen.found) {
    PushGoTo(unseen.finish, kGoExplore);
    return false;
  }
  // Else the nearest closed unlocked door, else the nearest locked one (trying locked doors
  // first could loop: opening a locked door may itself ask to explore). Unlike the reference,
  // only a locked door whose key is in hand or in sight: going to one without would fetch a key
  // that cannot be found, and explore, and go to the same door again, forever.
  PathResult door = ShortestPath(
      [](Pos, const Object& o) { return o.is_door() && !o.is_open_door() && !o.is_locked_door(); },
      true);
  if (!door.found) {
    unsigned keys = 0;  // colours of the keys in hand or on seen cells
    if (w.carrying.type == ObjectType::kKey) keys |= 1u << static_cast<int>(w.carrying.color);
    for (int y = 0; y < height_; ++y) {
      for (int x = 0; x < width_; ++x) {
        const Object& o = w.grid.at(x, y);
        if (o.type == ObjectType::kKey && seen_[y * width_ + x]) {
          keys |= 1u << static_cast<int>(o.color);
        }
      }
    }
    door = ShortestPath(
        [keys](Pos, const Object& o) {
          return o.is_door() && !o.is_open_door() &&
                 (!o.is_locked_door() || (keys >> static_cast<int>(o.color) & 1u) != 0);
        },
        true);
  }
  if (door.found) {
    const Object& d = w.grid.at(door.finish);
    const bool got_the_key = w.carrying.type == ObjectType::kKey && w.carrying.color == d.color;
    const uint8_t reason = d.is_locked_door() && got_the_key ? kOpenKeepKey : kOpenNone;
    stack_.pop_back();
    PushSimple(SubgoalKind::kOpen, reason);
    Subgoal go;
    go.kind = SubgoalKind::kGoNextTo;
    go.reason = kGoOpen;
    go.target = kTargetDoor;
    go.pos = door.finish;
    Push(go);
    return false;
  }
  // Last resort (not in the reference): open the nearest seen box; what is missing may be in
  // it (KeyInBox). The box is gone afterwards, so this never happens while anything else is left.
  const PathResult box = ShortestPath(
      [this](Pos p, const Object& o) { return o.type == ObjectType::kBox && Seen(p); }, true);
  if (box.found) {
    stack_.pop_back();
    PushSimple(SubgoalKind::kOpenBox);
    PushGoTo(box.finish);
    return false;
  }
  if (w.carrying.type == ObjectType::kBox) {  // a box in hand: put it down to open it
    Pos drop;
    if (FindDropPos(std::nullopt, &drop)) {
      PushSimple(SubgoalKind::kDrop);
      PushGoTo(drop);
      return false;
    }
  }
  Fail(BotStatus::kNothingToExplore);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Search.

template <typename Accept>
int Bot::Bfs(int pass, int num_seeds, bool ignore_blockers, Accept accept, bool stop_at_accept) {
  std::vector<int>& order = pass == 1 ? order1_ : order2_;
  std::vector<int>& parent = pass == 1 ? parent1_ : parent2_;
  std::vector<int>& depth = pass == 1 ? depth1_ : depth2_;
  std::vector<uint32_t>& mark = pass == 1 ? mark1_ : mark2_;
  const uint32_t stamp = pass == 1 ? stamp1_ : stamp2_;
  const Grid& g = episode_->world().grid;
  int head = 0;
  int tail = num_seeds;
  while (head < tail) {
    const int c = order[head];
    const int dir = queue_dir_[head];
    ++head;
    const Pos p = CellPos(c);
    const Object& o = g.at(p);
    if (accept(p, o)) {
      if (stop_at_accept) {
        visited_ = tail;
        return c;
      }
    }
    // Unseen cells are never expanded; nor are walls, closed doors and (unless allowed)
    // objects.
    if (!seen_[c]) continue;
    if (!o.empty()) {
      if (o.type == ObjectType::kWall) continue;
      if (o.is_door()) {
        if (!o.is_open_door()) continue;
      } else if (!ignore_blockers) {
        continue;
      }
    }
    // Straight on first, then the two sides, then back: prefers straight lines.
    const int di = DirX(dir), dj = DirY(dir);
    const int nx[4] = {di, dj, -dj, -di};
    const int ny[4] = {dj, di, -di, -dj};
    for (int k = 0; k < 4; ++k) {
      const Pos q{p.x + nx[k], p.y + ny[k]};
      if (!InGrid(q)) continue;
      const int qc = Cell(q);
      if (mark[qc] == stamp) continue;
      mark[qc] = stamp;
      parent[qc] = c;
      depth[qc] = depth[c] + 1;
      if (pass == 2) root2_[qc] = root2_[c];
      order[tail] = qc;
      queue_dir_[tail] = PackDir(nx[k], ny[k]);
      ++tail;
    }
  }
  visited_ = tail;
  return -1;
}

void Bot::NewStamp(int pass) {
  uint32_t& stamp = pass == 1 ? stamp1_ : stamp2_;
  std::vector<uint32_t>& mark = pass == 1 ? mark1_ : mark2_;
  if (++stamp == 0) {
    std::fill(mark.begin(), mark.end(), 0);
    stamp = 1;
  }
}

void Bot::SeedPass1() {
  const WorldState& w = episode_->world();
  NewStamp(1);
  const int c = Cell(w.agent_pos);
  mark1_[c] = stamp1_;
  parent1_[c] = -1;
  depth1_[c] = 0;
  order1_[0] = c;
  const Pos d = DirVec(w.agent_dir);
  queue_dir_[0] = PackDir(d.x, d.y);
}

void Bot::SeedPass2(int num_pass1) {
  // Every cell the first pass reached, in its visit order, facing right (as the reference).
  NewStamp(2);
  for (int k = 0; k < num_pass1; ++k) {
    const int c = order1_[k];
    mark2_[c] = stamp2_;
    parent2_[c] = -1;
    depth2_[c] = 0;
    root2_[c] = c;
    order2_[k] = c;
    queue_dir_[k] = PackDir(1, 0);
  }
}

template <typename Accept>
Bot::PathResult Bot::ShortestPath(Accept accept, bool try_with_blockers) {
  SeedPass1();
  int finish = Bfs(1, 1, false, accept, true);
  bool second = false;
  if (finish < 0 && try_with_blockers) {
    SeedPass2(visited_);
    finish = Bfs(2, visited_, true, accept, true);
    second = true;
  }
  if (finish < 0) return PathResult{};
  return BuildPath(finish, second);
}

Bot::PathResult Bot::BuildPath(int finish, bool second_pass) const {
  PathResult r;
  r.found = true;
  r.finish = CellPos(finish);
  r.with_blockers = second_pass;
  int cur = finish;
  int child = -1;
  int length = 0;
  if (second_pass) {
    while (parent2_[cur] >= 0) {
      child = cur;
      cur = parent2_[cur];
      ++length;
    }
  }
  while (parent1_[cur] >= 0) {
    child = cur;
    cur = parent1_[cur];
    ++length;
  }
  r.length = length;
  r.first = length > 0 ? CellPos(child) : r.finish;
  return r;
}

void Bot::DescPositions(const Subgoal& sg, std::vector<Pos>* out) {
  out->clear();
  const WorldState& w = episode_->world();
  const Grid& g = w.grid;
  if (sg.target == kTargetKey) {
    const Color color = static_cast<Color>(sg.arg);
    for (int x = 0; x < width_; ++x) {
      for (int y = 0; y < height_; ++y) {
        const Object& o = g.at(x, y);
        if (o.type == ObjectType::kKey && o.color == color) out->push_back({x, y});
      }
    }
    return;
  }
  const uint16_t carrying_id = w.carrying.empty() ? 0 : w.carrying.id;
  const DescRange& range = descs_[sg.arg];
  for (int k = range.begin; k < range.begin + range.count; ++k) {
    const uint16_t id = desc_ids_[k];
    if (id == carrying_id) continue;
    Pos& cached = desc_pos_cache_[k];
    if (!(InGrid(cached) && g.at(cached).id == id && !g.at(cached).empty())) {
      // It moved: look for it.
      cached = {-1, -1};
      for (int x = 0; x < width_ && cached.x < 0; ++x) {
        for (int y = 0; y < height_; ++y) {
          const Object& o = g.at(x, y);
          if (o.id == id && !o.empty()) {
            cached = {x, y};
            break;
          }
        }
      }
      if (cached.x < 0) continue;  // not on the grid (e.g. inside a box)
    }
    out->push_back(cached);
  }
}

Bot::ObjTarget Bot::FindObjPos(const Subgoal& sg, bool adjacent) {
  ObjTarget best;
  DescPositions(sg, &scratch_poss_);
  if (scratch_poss_.empty()) return best;
  const bool carrying = !episode_->world().carrying.empty();
  // One full search without blockers gives every candidate's path of the reference's first
  // pass; a second full search through blockers (seeded as the reference seeds it) gives the
  // others. Both are the same search trees as the reference's per-candidate searches.
  bool pass1_done = false, pass2_done = false;
  int num_pass1 = 0;
  const auto never = [](Pos, const Object&) { return false; };
  int best_distance = 999;
  for (const Pos p : scratch_poss_) {
    if (!Seen(p)) continue;
    if (!pass1_done) {
      SeedPass1();
      Bfs(1, 1, false, never, false);
      num_pass1 = visited_;
      pass1_done = true;
    }
    const int c = Cell(p);
    int distance;
    if (mark1_[c] == stamp1_) {
      distance = depth1_[c];
    } else {
      if (!pass2_done) {
        SeedPass2(num_pass1);
        Bfs(2, num_pass1, true, never, false);
        pass2_done = true;
      }
      if (mark2_[c] != stamp2_) continue;  // unreachable even through blockers
      // A lower bound on the extra steps to move blockers: pick, turn, drop, turn back (and
      // three more when carrying something).
      distance = depth2_[c] + depth1_[root2_[c]] + (carrying ? 7 : 4);
    }
    // Standing on the target (an open door): at least 2 steps (3 for adjacent).
    if (distance == 0) distance = adjacent ? 3 : 2;
    // Already next to it when an adjacent cell is wanted: no better than distance 2 targets.
    if (adjacent && distance == 1) distance = 3;
    if (distance < best_distance) {
      best_distance = distance;
      best.found = true;
      best.pos = p;
      best.obj = &episode_->world().grid.at(p);
    }
  }
  return best;
}

bool Bot::FindDropPos(std::optional<Pos> except, Pos* out) {
  const WorldState& w = episode_->world();
  const Grid& g = w.grid;
  const Pos agent = w.agent_pos;
  // First try to keep off cells that blockers were cleared from (they were on a path the plan
  // needs; the reference may drop a blocker right back there and loop).
  bool avoid_cleared = false;
  bool avoid_doorways = false;
  const auto free_cell = [&](Pos p, const Object& o) {
    if (p == agent) return false;
    if (except && p == *except) return false;
    if (avoid_cleared && cleared_[Cell(p)]) return false;
    if (!Seen(p) || !o.empty()) return false;
    if (avoid_doorways) {
      for (int d = 0; d < 4; ++d) {
        const Pos v = DirVec(d);
        if (g.at(p.x + v.x, p.y + v.y).is_door()) return false;
      }
    }
    return true;
  };
  // A cell whose 8-neighbour ring stays connected if it is filled: the empty ring cells form
  // one run, and every object in the ring touches an empty ring cell.
  const auto unblocking = [&](Pos p, const Object& o) {
    if (!free_cell(p, o)) return false;
    static constexpr int kRingX[8] = {-1, 0, 1, 1, 1, 0, -1, -1};
    static constexpr int kRingY[8] = {-1, -1, -1, 0, 1, 1, 1, 0};
    int cls[8];
    for (int k = 0; k < 8; ++k) {
      const Pos q{p.x + kRingX[k], p.y + kRingY[k]};
      const Object& c = g.at(q);
      const bool seen = Seen(q);
      if (!InGrid(q) || (seen && c.type == ObjectType::kWall)) {
        cls[k] = 1;  // blocked for good
      } else if (seen && (c.empty() || c.is_open_door() || q == agent) &&
                 !(except && q == *except)) {
        cls[k] = 0;  // empty
      } else {
        cls[k] = 2;  // an object, an unseen cell, or the other drop spot
      }
    }
    int changes = 0;
    for (int k = 0; k < 8; ++k) {
      if ((cls[(k + 1) % 8] != 0) != (cls[k] != 0)) ++changes;
    }
    for (int k = 0; k < 8; ++k) {
      if (cls[k] == 2 && cls[(k + 7) % 8] != 0 && cls[(k + 1) % 8] != 0) return false;
    }
    return changes <= 2;
  };
  // Cells reachable without moving blockers first (keeping off cleared cells if possible),
  // then through blockers.
  // The reference's order: a cell keeping its ring connected, else any free cell. Here the
  // fallback first tries free cells that are not in a doorway (a door's neighbour: doorways are
  // the chokepoints between rooms).
  for (const bool with_blockers : {false, true}) {
    for (const bool avoid : {true, false}) {
      if (avoid && !any_cleared_) continue;
      avoid_cleared = avoid;
      PathResult r = ShortestPath(unblocking, with_blockers);
      if (!r.found) {
        avoid_doorways = true;
        r = ShortestPath(free_cell, with_blockers);
        avoid_doorways = false;
      }
      if (!r.found) r = ShortestPath(free_cell, with_blockers);
      if (r.found) {
        *out = r.finish;
        return true;
      }
    }
  }
  return false;
}

int Bot::ClosestWallOrDoor(Pos dir) const {
  // Distance along `dir` to the nearest wall or door, stopping at the edge of the view.
  const WorldState& w = episode_->world();
  const int half = w.agent_view_size / 2;
  for (int d = 1;; ++d) {
    if (d > half) return d - 1;
    const Object& o = w.grid.at(w.agent_pos.x + d * dir.x, w.agent_pos.y + d * dir.y);
    if (o.type == ObjectType::kWall || o.is_door()) return d;
  }
}

std::string Bot::DescribeStack() const {
  std::string s;
  for (auto it = stack_.rbegin(); it != stack_.rend(); ++it) {
    if (!s.empty()) s += ' ';
    switch (it->kind) {
      case SubgoalKind::kGoNextTo: {
        s += "GoNextTo(";
        switch (it->target) {
          case kTargetPos:
            s += std::to_string(it->pos.x) + "," + std::to_string(it->pos.y);
            break;
          case kTargetDoor:
            s += "door " + std::to_string(it->pos.x) + "," + std::to_string(it->pos.y);
            break;
          case kTargetDesc:
            s += "desc " + std::to_string(it->arg);
            break;
          default:
            s += std::string(ColorName(static_cast<Color>(it->arg))) + " key";
            break;
        }
        static const char* kReasons[] = {"", ", PutNext", ", Open", ", Explore"};
        s += kReasons[it->reason & 3];
        s += ")";
        break;
      }
      case SubgoalKind::kOpen:
        s += it->reason == kOpenUnlock    ? "Open(Unlock)"
             : it->reason == kOpenKeepKey ? "Open(KeepKey)"
                                          : "Open";
        break;
      case SubgoalKind::kClose:
        s += "Close";
        break;
      case SubgoalKind::kPickup:
        s += "Pickup";
        break;
      case SubgoalKind::kDrop:
        s += "Drop";
        break;
      case SubgoalKind::kExplore:
        s += "Explore";
        break;
      case SubgoalKind::kOpenBox:
        s += "OpenBox";
        break;
    }
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Running episodes.

BotEpisodeResult RunBotEpisode(Episode& episode, Bot& bot, double p_random, Rng& rng,
                               nlohmann::json* trace) {
  using nlohmann::json;
  BotEpisodeResult result;
  const int view = episode.world().agent_view_size;
  std::vector<uint8_t> image(ObservationBytes(view));
  const auto observation = [&](json* obj) {
    episode.Observe(image.data());
    (*obj)["image"] = image;
    (*obj)["direction"] = episode.world().agent_dir;
  };
  json* steps = nullptr;
  if (trace != nullptr) {
    (*trace)["initial"] = EpisodeStateToJson(episode.world(), episode.instr());
    json obs = json::object();
    observation(&obs);
    (*trace)["initial_obs"] = std::move(obs);
    (*trace)["steps"] = json::array();
    steps = &(*trace)["steps"];
  }

  bot.Reset(episode);
  Action suggested = bot.Replan(std::nullopt);
  while (!bot.failed()) {
    Action taken = suggested;
    if (p_random > 0.0 && rng.Float() < p_random) {
      taken = static_cast<Action>(rng.Int(0, kNumActions));
    }
    const StepResult r = episode.Step(taken);
    ++result.steps;
    result.reward = r.reward;
    result.terminated = r.terminated;
    result.truncated = r.truncated;
    if (r.reward > 0.0f) result.success = true;
    if (steps != nullptr) {
      json s = json::object();
      s["action"] = static_cast<int>(taken);
      observation(&s);
      s["reward"] = r.reward;
      s["terminated"] = r.terminated;
      s["truncated"] = r.truncated;
      steps->push_back(std::move(s));
    }
    if (r.terminated || r.truncated) break;
    suggested = bot.Replan(taken);
  }
  result.bot_status = bot.status();
  return result;
}

}  // namespace skillgrid::envs
