// The BabyAI instruction language: object descriptions, instruction trees, surface text and
// its parser, the conformance JSON form, and the reference verifier.
// Exact Farama Minigrid 3.1 semantics (minigrid/envs/babyai/core/verifier.py); see
// ../shared/reference/babyai-levels.md sections 1-3.
//
// An instruction is one flat value (Instr): a fixed array of at most 7 nodes with child indices
// (the grammar allows no more), plus two pools holding the object identities and positions its
// descriptions resolved to. Copying one is a memcpy of the nodes plus two vector copies;
// copy-assigning into an existing Instr, resetting and verifying allocate nothing once the pools
// have grown to size.
//
// Objects are tracked by Object::id (Python's `is`), so every non-empty object must carry a
// unique non-zero identity, as WorldState::Place gives it.
//
// Typical episode use:
//   Instr instr = ParseMission("go to the red ball");   // or InstrFromJson, or the builders
//   ResetVerifier(instr, world);                         // at reset, with the start pose
//   ... after every StepWorld(world, a):  VerifyResult r = Verify(instr, world, a);
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "envs/world.h"

namespace skillgrid::envs {

/// Error for malformed instructions: unparsable mission text, bad JSON, or a tree the grammar
/// forbids (e.g. "pick up" a door, Before nested in And). The message is one line.
class InstrError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Where a description places its objects, relative to the agent's pose when it is resolved.
enum class DescLoc : uint8_t { kNone = 0, kFront = 1, kBehind = 2, kLeft = 3, kRight = 4 };

/// Kinds of instruction nodes: four actions and three connectives.
enum class InstrKind : uint8_t { kGoTo, kPickup, kOpen, kPutNext, kBefore, kAfter, kAnd };

/// Outcome of verifying one step (the reference's "continue", "success", "failure").
enum class VerifyResult : uint8_t { kContinue = 0, kSuccess = 1, kFailure = 2 };

/// Lower-case names: "front"/"behind"/"left"/"right" (kNone -> ""), "goto"/"pickup"/"open"/
/// "putnext"/"before"/"after"/"and" (the JSON kinds), "continue"/"success"/"failure".
std::string_view DescLocName(DescLoc loc);
std::string_view InstrKindName(InstrKind kind);
std::string_view VerifyResultName(VerifyResult r);

/// True for GoTo, Pickup, Open and PutNext.
inline bool IsActionKind(InstrKind k) { return k <= InstrKind::kPutNext; }

/// A read-only view of a contiguous run of T (C++17 has no std::span).
template <typename T>
struct ConstSpan {
  const T* ptr = nullptr;  ///< first element
  int count = 0;           ///< number of elements
  const T* begin() const { return ptr; }
  const T* end() const { return ptr + count; }
  int size() const { return count; }
  bool empty() const { return count == 0; }
  const T& operator[](int i) const { return ptr[i]; }
};

/// Minigrid's ObjDesc: an optional type (box, ball, key or door; nullopt = "object", which
/// matches any non-empty cell, walls included), an optional colour and a location.
/// The resolved objects live in the owning Instr's pools; read them with Instr::ObjSet/ObjPoss.
struct ObjDesc {
  std::optional<ObjectType> type;  ///< kBox, kBall, kKey or kDoor; nullopt for "object"
  std::optional<Color> color;      ///< nullopt: any colour
  DescLoc loc = DescLoc::kNone;    ///< location filter (applied only when resolving)
  /// Article: "the" iff exactly one object matched when the text was generated or parsed.
  /// Set by ParseMission, ResolveInstr and ResetVerifier; Surface reads it.
  bool definite = false;

  int pool_begin = 0;  ///< first slot of this description in Instr::ids / Instr::poss
  int set_size = 0;    ///< number of objects in obj_set (Instr::ids[pool_begin, +set_size))
  int poss_size = 0;   ///< number of tracked positions (Instr::poss[pool_begin, +poss_size))
};

/// One node of an instruction tree. Action nodes use desc[0] (desc, or desc_move for PutNext)
/// and desc[1] (desc_fixed, PutNext only); connectives use children a and b.
struct InstrNode {
  InstrKind kind = InstrKind::kGoTo;  ///< what this node asks for
  bool strict = false;  ///< Pickup/Open/PutNext strict mode (a wrong attempt fails the episode)
  int8_t a = -1;        ///< first child (Before: done first; After: done second)
  int8_t b = -1;        ///< second child
  std::array<ObjDesc, 2> desc{};  ///< action nodes: desc / desc_move, then desc_fixed

  // Verifier state, reset by ResetVerifier.
  uint16_t pre_carrying = 0;  ///< Pickup/PutNext: id carried at this node's last verification
  bool a_done = false;        ///< connectives: child a has succeeded (latched)
  bool b_done = false;        ///< connectives: child b has succeeded (latched)
};

/// A whole instruction: nodes[0] is the root; children always have larger indices.
/// Build it with the Make* functions, ParseMission or InstrFromJson, which enforce the grammar:
/// Before/After take actions or And; And takes actions; Open takes a door; Pickup and the moved
/// object of PutNext are not doors.
struct Instr {
  /// The grammar's maximum: Before(And(x, y), And(z, w)).
  static constexpr int kMaxNodes = 7;

  std::array<InstrNode, kMaxNodes> nodes{};  ///< nodes[0, num_nodes) are in use
  int num_nodes = 0;                         ///< 0 for an empty (default) instruction
  std::vector<uint16_t> ids;  ///< pool of resolved object identities (each desc's obj_set)
  std::vector<Pos> poss;      ///< pool of tracked positions (each desc's obj_poss), same size

  /// The root node (nodes[0]).
  const InstrNode& root() const { return nodes[0]; }
  /// The objects a description matched when last resolved (its frozen obj_set).
  ConstSpan<uint16_t> ObjSet(const ObjDesc& d) const {
    return {ids.data() + d.pool_begin, d.set_size};
  }
  /// The positions currently tracked for a description (its obj_poss).
  ConstSpan<Pos> ObjPoss(const ObjDesc& d) const {
    return {poss.data() + d.pool_begin, d.poss_size};
  }
};

/// Builders for action instructions; they throw InstrError when the grammar forbids the
/// description (Open needs a door; Pickup and the moved object of PutNext must not be doors).
Instr MakeGoTo(const ObjDesc& desc);
Instr MakePickup(const ObjDesc& desc, bool strict = false);
Instr MakeOpen(const ObjDesc& desc, bool strict = false);
Instr MakePutNext(const ObjDesc& desc_move, const ObjDesc& desc_fixed, bool strict = false);
/// Builders for connectives ("A, then B", "A after you B", "A and B"); they copy the children's
/// descriptions (not their resolution) and throw InstrError for a nesting the grammar forbids.
Instr MakeBefore(const Instr& a, const Instr& b);
Instr MakeAfter(const Instr& a, const Instr& b);
Instr MakeAnd(const Instr& a, const Instr& b);

/// Minigrid's find_matching_objs with use_location = true, for one description: appends the
/// matching identities to *ids and their positions to *poss (both cleared first).
/// Cells are scanned x outer, y inner; the carried object also counts (see instr.cpp).
void FindMatchingObjs(const ObjDesc& desc, const WorldState& world, std::vector<uint16_t>* ids,
                      std::vector<Pos>* poss);

/// Resolves every description against `world` at its current agent pose (the reference's
/// generation-time resolution) and sets each article flag (definite iff one match).
void ResolveInstr(Instr& instr, const WorldState& world);

/// The reference's reset_verifier: ResolveInstr with the start pose, then clears every latch
/// and pre-carrying memory. Call once per episode, after the world is in its initial state.
void ResetVerifier(Instr& instr, const WorldState& world);

/// The reference's update_objs_poss: rescans the grid for the objects each description already
/// tracks (no location test); carried objects drop out of the tracked positions.
/// Verify calls this itself on a drop; call it directly only outside Verify.
void RetrackObjects(Instr& instr, const WorldState& world);

/// Verifies one step. `world` is the state after `action` was applied. As the reference's
/// RoomGridLevel.step does, a drop action (successful or not) first re-tracks the objects
/// (RetrackObjects), then the tree is verified. Allocation-free.
VerifyResult Verify(Instr& instr, const WorldState& world, Action action);

/// The mission text, e.g. "go to the red ball", "open a door on your left, then pick up a box".
std::string Surface(const Instr& instr);

/// Parses a mission text back into an instruction (article flags taken from the text).
/// Throws InstrError naming the offending word and its position when it does not parse.
Instr ParseMission(std::string_view text);

/// The conformance format ({"kind":"goto","desc":{"type":..,"color":..,"loc":..}}, ...).
/// InstrFromJson throws InstrError naming the field for unknown kinds, types, colours or
/// locations, missing fields, wrong value types and nestings the grammar forbids.
Instr InstrFromJson(const nlohmann::json& j);
nlohmann::json InstrToJson(const Instr& instr);

/// Number of navigations the instruction needs (PutNext 2, other actions 1, connectives the
/// sum); BabyAI's max_steps = NumNavs * room_size^2 * num_rows * num_cols.
int NumNavs(const Instr& instr);

}  // namespace skillgrid::envs
