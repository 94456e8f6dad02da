// The BabyAI instruction language; see instr.h.
#include "envs/instr.h"

#include <cctype>
#include <cstdlib>
#include <string>

namespace skillgrid::envs {
namespace {

// The four describable object types in Minigrid's OBJ_TYPES order, and their words.
constexpr ObjectType kDescTypes[] = {ObjectType::kBox, ObjectType::kBall, ObjectType::kKey,
                                     ObjectType::kDoor};
constexpr std::string_view kDescTypeNames[] = {"box", "ball", "key", "door"};

std::string_view DescTypeName(ObjectType t) {
  for (int i = 0; i < 4; ++i) {
    if (kDescTypes[i] == t) return kDescTypeNames[i];
  }
  return "?";
}

bool ParseDescType(std::string_view s, ObjectType* out) {
  for (int i = 0; i < 4; ++i) {
    if (kDescTypeNames[i] == s) {
      *out = kDescTypes[i];
      return true;
    }
  }
  return false;
}

bool ParseDescLoc(std::string_view s, DescLoc* out) {
  for (DescLoc l : {DescLoc::kFront, DescLoc::kBehind, DescLoc::kLeft, DescLoc::kRight}) {
    if (DescLocName(l) == s) {
      *out = l;
      return true;
    }
  }
  return false;
}

bool IsDescType(ObjectType t) {
  return t == ObjectType::kBox || t == ObjectType::kBall || t == ObjectType::kKey ||
         t == ObjectType::kDoor;
}

// ---------------------------------------------------------------------------------------------
// Building trees.

// Copies `src`'s nodes into `dst` starting at index `at`, shifting child indices; the copied
// descriptions lose their resolution. Returns the index after the last copied node.
int CopyNodes(const Instr& src, Instr* dst, int at) {
  for (int i = 0; i < src.num_nodes; ++i) {
    InstrNode n = src.nodes[i];
    if (n.a >= 0) n.a = static_cast<int8_t>(n.a + at);
    if (n.b >= 0) n.b = static_cast<int8_t>(n.b + at);
    for (ObjDesc& d : n.desc) d.pool_begin = d.set_size = d.poss_size = 0;
    n.pre_carrying = 0;
    n.a_done = n.b_done = false;
    dst->nodes[at + i] = n;
  }
  return at + src.num_nodes;
}

void CheckDesc(const ObjDesc& d, const char* what) {
  if (d.type && !IsDescType(*d.type)) {
    throw InstrError(std::string(what) + ": a description's type must be box, ball, key or door");
  }
  if (static_cast<int>(d.loc) > static_cast<int>(DescLoc::kRight)) {
    throw InstrError(std::string(what) + ": bad location");
  }
}

Instr MakeAction(InstrKind kind, const ObjDesc& d0, const ObjDesc& d1, bool strict) {
  Instr in;
  in.num_nodes = 1;
  InstrNode& n = in.nodes[0];
  n.kind = kind;
  n.strict = strict;
  n.desc[0] = d0;
  n.desc[1] = d1;
  for (ObjDesc& d : n.desc) d.pool_begin = d.set_size = d.poss_size = 0;
  return in;
}

Instr MakeConnective(InstrKind kind, const Instr& a, const Instr& b) {
  const char* name = kind == InstrKind::kBefore  ? "Before"
                     : kind == InstrKind::kAfter ? "After"
                                                 : "And";
  for (const Instr* c : {&a, &b}) {
    if (c->num_nodes <= 0) throw InstrError(std::string(name) + ": empty sub-instruction");
    const InstrKind ck = c->root().kind;
    if (kind == InstrKind::kAnd && !IsActionKind(ck)) {
      throw InstrError("And: both parts must be actions, not '" + std::string(InstrKindName(ck)) +
                       "'");
    }
    if (kind != InstrKind::kAnd && !IsActionKind(ck) && ck != InstrKind::kAnd) {
      throw InstrError(std::string(name) + ": both parts must be actions or 'and', not '" +
                       std::string(InstrKindName(ck)) + "'");
    }
  }
  if (1 + a.num_nodes + b.num_nodes > Instr::kMaxNodes) {
    throw InstrError(std::string(name) + ": instruction too large");
  }
  Instr in;
  InstrNode& root = in.nodes[0];
  root.kind = kind;
  root.a = 1;
  int next = CopyNodes(a, &in, 1);
  root.b = static_cast<int8_t>(next);
  in.num_nodes = CopyNodes(b, &in, next);
  return in;
}

// Number of descriptions an action node uses.
int NumDescs(InstrKind k) {
  if (k == InstrKind::kPutNext) return 2;
  return IsActionKind(k) ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Resolution.

bool MatchesLook(const ObjDesc& d, const Object& o) {
  if (o.empty()) return false;  // type None matches any object, walls and doors included
  if (d.type && o.type != *d.type) return false;
  if (d.color && o.color != *d.color) return false;
  return true;
}

// Minigrid's find_matching_objs(env, use_location=True), appending to ids/poss; returns the
// number of identities and positions appended through *n_ids / *n_poss.
void ScanDesc(const ObjDesc& d, const WorldState& w, std::vector<uint16_t>* ids,
              std::vector<Pos>* poss, int* n_ids, int* n_poss) {
  const Grid& g = w.grid;
  const bool use_loc = d.loc != DescLoc::kNone;
  const bool use_room = use_loc && w.rooms.valid();
  const Pos room = use_room ? w.rooms.RoomOf(w.agent_pos) : Pos{0, 0};
  const Pos d1 = DirVec(w.agent_dir);
  const Pos d2{-d1.y, d1.x};
  int ni = 0, np = 0;
  for (int x = 0; x < g.width(); ++x) {
    for (int y = 0; y < g.height(); ++y) {
      const Object& o = g.at(x, y);
      if (!MatchesLook(d, o)) continue;
      if (use_loc) {
        // Locations apply only to objects in the agent's room; pos_inside counts the room's
        // walls, so doors on them qualify.
        if (use_room && !w.rooms.Inside(room.x, room.y, {x, y})) continue;
        const int vx = x - w.agent_pos.x, vy = y - w.agent_pos.y;
        const int along = vx * d1.x + vy * d1.y;  // > 0 in front, < 0 behind
        const int side = vx * d2.x + vy * d2.y;   // > 0 right, < 0 left
        bool ok = false;
        switch (d.loc) {
          case DescLoc::kFront:
            ok = along > 0;
            break;
          case DescLoc::kBehind:
            ok = along < 0;
            break;
          case DescLoc::kLeft:
            ok = side < 0;
            break;
          case DescLoc::kRight:
            ok = side > 0;
            break;
          case DescLoc::kNone:
            ok = true;
            break;
        }
        if (!ok) continue;
      }
      ids->push_back(o.id);
      poss->push_back({x, y});
      ++ni;
      ++np;
    }
  }
  // The carried object is a candidate too (type and colour only, no location test).
  // Why: in the PutNext*Carrying levels the reference generates the text and runs
  // reset_verifier while the object still lies on the floor, and only then moves it into the
  // agent's hands. Our states are captured after that move, so without this the carried object
  // would be missing from desc_move's obj_set (the instruction could never succeed) and the
  // article would come out wrong. Its position there was its (now stale) floor cell, which is
  // what carrying_pos holds when known; an out-of-grid carrying_pos contributes no position.
  // Reference generation never resolves while the agent carries anything, so this changes
  // nothing elsewhere.
  if (!w.carrying.empty() && MatchesLook(d, w.carrying)) {
    ids->push_back(w.carrying.id);
    ++ni;
    if (g.InBounds(w.carrying_pos)) {
      poss->push_back(w.carrying_pos);
      ++np;
    }
  }
  *n_ids = ni;
  *n_poss = np;
}

void Resolve(Instr& in, const WorldState& w) {
  in.ids.clear();
  in.poss.clear();
  for (int i = 0; i < in.num_nodes; ++i) {
    InstrNode& n = in.nodes[i];
    for (int k = 0; k < NumDescs(n.kind); ++k) {
      ObjDesc& d = n.desc[k];
      d.pool_begin = static_cast<int>(in.ids.size());
      ScanDesc(d, w, &in.ids, &in.poss, &d.set_size, &d.poss_size);
      in.poss.resize(in.ids.size());  // keep the pools aligned (carried object without a cell)
      d.definite = d.set_size == 1;
    }
  }
}

bool Contains(ConstSpan<uint16_t> set, uint16_t id) {
  for (uint16_t s : set) {
    if (s == id) return true;
  }
  return false;
}

// Identity of the carried object; 0 (Python's None) when the hands are empty.
uint16_t CarriedId(const WorldState& w) { return w.carrying.empty() ? 0 : w.carrying.id; }

// Minigrid's cur_pos of object `id`, which was carried before this step's drop: the front cell
// if the drop put it there, else carrying_pos while it is still in hand (a failed drop).
bool CurPosOf(const WorldState& w, uint16_t id, Pos* out) {
  if (CarriedId(w) == id) {
    *out = w.carrying_pos;
    return true;
  }
  const Pos f = w.FrontPos();
  if (w.grid.InBounds(f) && w.grid.at(f).id == id) {
    *out = f;
    return true;
  }
  for (int x = 0; x < w.grid.width(); ++x) {  // not reached in practice; kept for safety
    for (int y = 0; y < w.grid.height(); ++y) {
      if (w.grid.at(x, y).id == id) {
        *out = {x, y};
        return true;
      }
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Verification (verifier.py's verify / verify_action, BABYAI_DONE_ACTIONS unset).

VerifyResult VerifyNode(Instr& in, int i, const WorldState& w, Action a) {
  InstrNode& n = in.nodes[i];
  switch (n.kind) {
    case InstrKind::kGoTo: {
      const Pos f = w.FrontPos();
      for (const Pos& p : in.ObjPoss(n.desc[0])) {
        if (p == f) return VerifyResult::kSuccess;
      }
      return VerifyResult::kContinue;
    }
    case InstrKind::kOpen: {
      if (a != Action::kToggle) return VerifyResult::kContinue;
      const Object& front = w.grid.at(w.FrontPos());
      if (front.is_open_door() && Contains(in.ObjSet(n.desc[0]), front.id)) {
        return VerifyResult::kSuccess;
      }
      if (n.strict && front.is_door()) return VerifyResult::kFailure;
      return VerifyResult::kContinue;
    }
    case InstrKind::kPickup: {
      // preCarrying is what this node saw carried at its previous verification.
      const uint16_t pre = n.pre_carrying;
      const uint16_t now = CarriedId(w);
      n.pre_carrying = now;
      if (a != Action::kPickup) return VerifyResult::kContinue;
      if (pre == 0 && now != 0 && Contains(in.ObjSet(n.desc[0]), now)) {
        return VerifyResult::kSuccess;
      }
      if (n.strict && now != 0) return VerifyResult::kFailure;
      return VerifyResult::kContinue;
    }
    case InstrKind::kPutNext: {
      const uint16_t pre = n.pre_carrying;
      const uint16_t now = CarriedId(w);
      n.pre_carrying = now;
      if (n.strict && a == Action::kPickup && now != 0) return VerifyResult::kFailure;
      if (a != Action::kDrop) return VerifyResult::kContinue;
      if (pre == 0 || !Contains(in.ObjSet(n.desc[0]), pre)) return VerifyResult::kContinue;
      Pos pa;
      if (!CurPosOf(w, pre, &pa)) return VerifyResult::kContinue;
      for (const Pos& pb : in.ObjPoss(n.desc[1])) {
        if (std::abs(pa.x - pb.x) + std::abs(pa.y - pb.y) == 1) return VerifyResult::kSuccess;
      }
      return VerifyResult::kContinue;
    }
    case InstrKind::kBefore:
    case InstrKind::kAfter: {
      // Before: first = a; After: first = b. Once `first` succeeds, `second` is verified on the
      // same step, so both can complete together. Any failure fails the whole.
      const bool before = n.kind == InstrKind::kBefore;
      bool& first_done = before ? n.a_done : n.b_done;
      const int first = before ? n.a : n.b;
      const int second = before ? n.b : n.a;
      if (!first_done) {
        const VerifyResult r = VerifyNode(in, first, w, a);
        if (r != VerifyResult::kSuccess) return r;
        first_done = true;
      }
      return VerifyNode(in, second, w, a);
    }
    case InstrKind::kAnd: {
      // Each side is verified until it succeeds, then latched; sub-failures are ignored.
      if (!n.a_done) n.a_done = VerifyNode(in, n.a, w, a) == VerifyResult::kSuccess;
      if (!n.b_done) n.b_done = VerifyNode(in, n.b, w, a) == VerifyResult::kSuccess;
      return n.a_done && n.b_done ? VerifyResult::kSuccess : VerifyResult::kContinue;
    }
  }
  return VerifyResult::kContinue;
}

// ---------------------------------------------------------------------------------------------
// Surface text.

void AppendDesc(const ObjDesc& d, std::string* s) {
  s->append(d.definite ? "the " : "a ");
  if (d.color) {
    s->append(ColorName(*d.color));
    s->push_back(' ');
  }
  s->append(d.type ? DescTypeName(*d.type) : std::string_view("object"));
  switch (d.loc) {
    case DescLoc::kFront:
      s->append(" in front of you");
      break;
    case DescLoc::kBehind:
      s->append(" behind you");
      break;
    case DescLoc::kLeft:
      s->append(" on your left");
      break;
    case DescLoc::kRight:
      s->append(" on your right");
      break;
    case DescLoc::kNone:
      break;
  }
}

void AppendNode(const Instr& in, int i, std::string* s) {
  const InstrNode& n = in.nodes[i];
  switch (n.kind) {
    case InstrKind::kGoTo:
      s->append("go to ");
      AppendDesc(n.desc[0], s);
      break;
    case InstrKind::kPickup:
      s->append("pick up ");
      AppendDesc(n.desc[0], s);
      break;
    case InstrKind::kOpen:
      s->append("open ");
      AppendDesc(n.desc[0], s);
      break;
    case InstrKind::kPutNext:
      s->append("put ");
      AppendDesc(n.desc[0], s);
      s->append(" next to ");
      AppendDesc(n.desc[1], s);
      break;
    case InstrKind::kBefore:
      AppendNode(in, n.a, s);
      s->append(", then ");
      AppendNode(in, n.b, s);
      break;
    case InstrKind::kAfter:
      AppendNode(in, n.a, s);
      s->append(" after you ");
      AppendNode(in, n.b, s);
      break;
    case InstrKind::kAnd:
      AppendNode(in, n.a, s);
      s->append(" and ");
      AppendNode(in, n.b, s);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Mission parser: recursive descent over words (a comma is a word of its own).
//   mission := part [("," "then" | "after" "you") part]
//   part    := action ["and" action]
//   action  := "go" "to" desc | "pick" "up" desc | "open" desc | "put" desc "next" "to" desc
//   desc    := ("a" | "the") [colour] (box | ball | key | door | object) [location]
//   location:= "in" "front" "of" "you" | "behind" "you" | "on" "your" ("left" | "right")

class MissionParser {
 public:
  explicit MissionParser(std::string_view text) : text_(text) {
    size_t i = 0;
    while (i < text.size()) {
      const char c = text[i];
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++i;
      } else if (c == ',') {
        words_.push_back(text.substr(i, 1));
        ++i;
      } else {
        size_t j = i;
        while (j < text.size() && text[j] != ',' &&
               !std::isspace(static_cast<unsigned char>(text[j]))) {
          ++j;
        }
        words_.push_back(text.substr(i, j - i));
        i = j;
      }
    }
  }

  Instr Parse() {
    if (words_.empty()) {
      throw InstrError("cannot parse mission \"" + std::string(text_) + "\": it is empty");
    }
    Instr first = Part();
    if (AtEnd()) return first;
    if (Peek() == ",") {
      ++pos_;
      Expect("then");
      Instr second = Part();
      ExpectEnd();
      return MakeBefore(first, second);
    }
    if (Peek() == "after") {
      ++pos_;
      Expect("you");
      Instr second = Part();
      ExpectEnd();
      return MakeAfter(first, second);
    }
    Fail(first.root().kind == InstrKind::kAnd ? "expected ', then', 'after you' or the end"
                                              : "expected 'and', ', then', 'after you' or the end");
  }

 private:
  bool AtEnd() const { return pos_ >= words_.size(); }
  // The current word; "" (which matches no keyword) at the end.
  std::string_view Peek() const { return AtEnd() ? std::string_view() : words_[pos_]; }

  [[noreturn]] void Fail(const std::string& what) const {
    std::string where =
        AtEnd() ? "at the end"
                : "at word " + std::to_string(pos_ + 1) + " ('" + std::string(words_[pos_]) + "')";
    throw InstrError("cannot parse mission \"" + std::string(text_) + "\": " + what + " " + where);
  }

  void Expect(std::string_view w) {
    if (Peek() != w) Fail("expected '" + std::string(w) + "'");
    ++pos_;
  }
  void ExpectEnd() {
    if (!AtEnd()) Fail("expected the end");
  }

  Instr Part() {
    Instr a = Action();
    if (Peek() == "and") {
      ++pos_;
      Instr b = Action();
      return MakeAnd(a, b);
    }
    return a;
  }

  Instr Action() {
    const std::string_view verb = Peek();
    if (verb == "go") {
      ++pos_;
      Expect("to");
      return MakeGoTo(Desc());
    }
    if (verb == "pick") {
      ++pos_;
      Expect("up");
      return MakePickup(Desc(/*door_ok=*/false, "'pick up' cannot take a door"));
    }
    if (verb == "open") {
      ++pos_;
      return MakeOpen(Desc(/*door_ok=*/true, nullptr, /*door_only=*/true));
    }
    if (verb == "put") {
      ++pos_;
      ObjDesc move = Desc(/*door_ok=*/false, "'put' cannot move a door");
      Expect("next");
      Expect("to");
      return MakePutNext(move, Desc());
    }
    Fail("expected 'go to', 'pick up', 'open' or 'put'");
  }

  ObjDesc Desc(bool door_ok = true, const char* door_msg = nullptr, bool door_only = false) {
    ObjDesc d;
    if (Peek() == "the") {
      d.definite = true;
    } else if (Peek() != "a") {
      Fail("expected 'a' or 'the'");
    }
    ++pos_;
    Color c;
    if (!AtEnd() && ParseColor(Peek(), &c)) {
      d.color = c;
      ++pos_;
    }
    ObjectType t;
    if (!AtEnd() && ParseDescType(Peek(), &t)) {
      d.type = t;
    } else if (Peek() != "object") {
      Fail(d.color ? "expected an object type" : "expected a colour or an object type");
    }
    if (!door_ok && d.type == ObjectType::kDoor) Fail(door_msg);
    if (door_only && d.type != ObjectType::kDoor) Fail("'open' needs a door");
    ++pos_;
    const std::string_view w = Peek();
    if (AtEnd()) return d;
    if (w == "in") {
      ++pos_;
      Expect("front");
      Expect("of");
      Expect("you");
      d.loc = DescLoc::kFront;
    } else if (w == "behind") {
      ++pos_;
      Expect("you");
      d.loc = DescLoc::kBehind;
    } else if (w == "on") {
      ++pos_;
      Expect("your");
      if (Peek() == "left") {
        d.loc = DescLoc::kLeft;
      } else if (Peek() == "right") {
        d.loc = DescLoc::kRight;
      } else {
        Fail("expected 'left' or 'right'");
      }
      ++pos_;
    }
    return d;
  }

  std::string_view text_;
  std::vector<std::string_view> words_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// JSON.

const nlohmann::json& Field(const nlohmann::json& j, const char* key, const std::string& path) {
  if (!j.is_object()) throw InstrError(path + ": expected a JSON object");
  auto it = j.find(key);
  if (it == j.end()) throw InstrError(path + ": missing field '" + key + "'");
  return *it;
}

std::string StringOrNull(const nlohmann::json& v, const std::string& path, bool* is_null) {
  *is_null = v.is_null();
  if (v.is_null()) return {};
  if (!v.is_string()) throw InstrError(path + ": expected a string or null");
  return v.get<std::string>();
}

ObjDesc DescFromJson(const nlohmann::json& j, const std::string& path) {
  ObjDesc d;
  bool null = false;
  const std::string type = StringOrNull(Field(j, "type", path), path + ".type", &null);
  if (!null) {
    ObjectType t;
    if (!ParseDescType(type, &t)) {
      throw InstrError(path + ".type: unknown object type '" + type +
                       "' (expected box, ball, key, door or null)");
    }
    d.type = t;
  }
  const std::string color = StringOrNull(Field(j, "color", path), path + ".color", &null);
  if (!null) {
    Color c;
    if (!ParseColor(color, &c)) throw InstrError(path + ".color: unknown colour '" + color + "'");
    d.color = c;
  }
  const std::string loc = StringOrNull(Field(j, "loc", path), path + ".loc", &null);
  if (!null && !ParseDescLoc(loc, &d.loc)) {
    throw InstrError(path + ".loc: unknown location '" + loc +
                     "' (expected front, behind, left, right or null)");
  }
  return d;
}

bool StrictFromJson(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json& v = Field(j, "strict", path);
  if (!v.is_boolean()) throw InstrError(path + ".strict: expected true or false");
  return v.get<bool>();
}

Instr FromJson(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json& kv = Field(j, "kind", path);
  if (!kv.is_string()) throw InstrError(path + ".kind: expected a string");
  const std::string kind = kv.get<std::string>();
  try {
    if (kind == "goto") return MakeGoTo(DescFromJson(Field(j, "desc", path), path + ".desc"));
    if (kind == "pickup") {
      return MakePickup(DescFromJson(Field(j, "desc", path), path + ".desc"),
                        StrictFromJson(j, path));
    }
    if (kind == "open") {
      return MakeOpen(DescFromJson(Field(j, "desc", path), path + ".desc"),
                      StrictFromJson(j, path));
    }
    if (kind == "putnext") {
      ObjDesc move = DescFromJson(Field(j, "desc_move", path), path + ".desc_move");
      ObjDesc fixed = DescFromJson(Field(j, "desc_fixed", path), path + ".desc_fixed");
      return MakePutNext(move, fixed, StrictFromJson(j, path));
    }
    if (kind == "before" || kind == "after" || kind == "and") {
      Instr a = FromJson(Field(j, "a", path), path + ".a");
      Instr b = FromJson(Field(j, "b", path), path + ".b");
      if (kind == "before") return MakeBefore(a, b);
      if (kind == "after") return MakeAfter(a, b);
      return MakeAnd(a, b);
    }
  } catch (const InstrError& e) {
    const std::string msg = e.what();
    if (msg.rfind(path, 0) == 0) throw;  // already names its field
    throw InstrError(path + ": " + msg);
  }
  throw InstrError(path + ".kind: unknown kind '" + kind +
                   "' (expected goto, pickup, open, putnext, before, after or and)");
}

nlohmann::json DescToJson(const ObjDesc& d) {
  nlohmann::json j;
  j["type"] = d.type ? nlohmann::json(std::string(DescTypeName(*d.type))) : nlohmann::json();
  j["color"] = d.color ? nlohmann::json(std::string(ColorName(*d.color))) : nlohmann::json();
  j["loc"] =
      d.loc == DescLoc::kNone ? nlohmann::json() : nlohmann::json(std::string(DescLocName(d.loc)));
  return j;
}

nlohmann::json NodeToJson(const Instr& in, int i) {
  const InstrNode& n = in.nodes[i];
  nlohmann::json j;
  j["kind"] = std::string(InstrKindName(n.kind));
  switch (n.kind) {
    case InstrKind::kGoTo:
      j["desc"] = DescToJson(n.desc[0]);
      break;
    case InstrKind::kPickup:
    case InstrKind::kOpen:
      j["desc"] = DescToJson(n.desc[0]);
      j["strict"] = n.strict;
      break;
    case InstrKind::kPutNext:
      j["desc_move"] = DescToJson(n.desc[0]);
      j["desc_fixed"] = DescToJson(n.desc[1]);
      j["strict"] = n.strict;
      break;
    case InstrKind::kBefore:
    case InstrKind::kAfter:
    case InstrKind::kAnd:
      j["a"] = NodeToJson(in, n.a);
      j["b"] = NodeToJson(in, n.b);
      break;
  }
  return j;
}

int NumNavsNode(const Instr& in, int i) {
  const InstrNode& n = in.nodes[i];
  if (n.kind == InstrKind::kPutNext) return 2;
  if (IsActionKind(n.kind)) return 1;
  return NumNavsNode(in, n.a) + NumNavsNode(in, n.b);
}

}  // namespace

std::string_view DescLocName(DescLoc loc) {
  switch (loc) {
    case DescLoc::kFront:
      return "front";
    case DescLoc::kBehind:
      return "behind";
    case DescLoc::kLeft:
      return "left";
    case DescLoc::kRight:
      return "right";
    case DescLoc::kNone:
      break;
  }
  return "";
}

std::string_view InstrKindName(InstrKind kind) {
  switch (kind) {
    case InstrKind::kGoTo:
      return "goto";
    case InstrKind::kPickup:
      return "pickup";
    case InstrKind::kOpen:
      return "open";
    case InstrKind::kPutNext:
      return "putnext";
    case InstrKind::kBefore:
      return "before";
    case InstrKind::kAfter:
      return "after";
    case InstrKind::kAnd:
      return "and";
  }
  return "?";
}

std::string_view VerifyResultName(VerifyResult r) {
  switch (r) {
    case VerifyResult::kContinue:
      return "continue";
    case VerifyResult::kSuccess:
      return "success";
    case VerifyResult::kFailure:
      return "failure";
  }
  return "?";
}

Instr MakeGoTo(const ObjDesc& desc) {
  CheckDesc(desc, "GoTo");
  return MakeAction(InstrKind::kGoTo, desc, ObjDesc{}, false);
}

Instr MakePickup(const ObjDesc& desc, bool strict) {
  CheckDesc(desc, "Pickup");
  if (desc.type == ObjectType::kDoor) throw InstrError("Pickup: cannot pick up a door");
  return MakeAction(InstrKind::kPickup, desc, ObjDesc{}, strict);
}

Instr MakeOpen(const ObjDesc& desc, bool strict) {
  CheckDesc(desc, "Open");
  if (desc.type != ObjectType::kDoor) throw InstrError("Open: the description must be a door");
  return MakeAction(InstrKind::kOpen, desc, ObjDesc{}, strict);
}

Instr MakePutNext(const ObjDesc& desc_move, const ObjDesc& desc_fixed, bool strict) {
  CheckDesc(desc_move, "PutNext");
  CheckDesc(desc_fixed, "PutNext");
  if (desc_move.type == ObjectType::kDoor) throw InstrError("PutNext: cannot move a door");
  return MakeAction(InstrKind::kPutNext, desc_move, desc_fixed, strict);
}

Instr MakeBefore(const Instr& a, const Instr& b) {
  return MakeConnective(InstrKind::kBefore, a, b);
}
Instr MakeAfter(const Instr& a, const Instr& b) { return MakeConnective(InstrKind::kAfter, a, b); }
Instr MakeAnd(const Instr& a, const Instr& b) { return MakeConnective(InstrKind::kAnd, a, b); }

void FindMatchingObjs(const ObjDesc& desc, const WorldState& world, std::vector<uint16_t>* ids,
                      std::vector<Pos>* poss) {
  ids->clear();
  poss->clear();
  int ni = 0, np = 0;
  ScanDesc(desc, world, ids, poss, &ni, &np);
}

void ResolveInstr(Instr& instr, const WorldState& world) { Resolve(instr, world); }

void ResetVerifier(Instr& instr, const WorldState& world) {
  Resolve(instr, world);
  for (int i = 0; i < instr.num_nodes; ++i) {
    InstrNode& n = instr.nodes[i];
    n.pre_carrying = 0;
    n.a_done = n.b_done = false;
  }
}

void RetrackObjects(Instr& instr, const WorldState& world) {
  // One pass over the grid for all descriptions, in resolution order (x outer, y inner); only
  // cells holding an object a description already tracks count for it.
  ObjDesc* descs[2 * Instr::kMaxNodes];
  int num_descs = 0;
  for (int i = 0; i < instr.num_nodes; ++i) {
    InstrNode& n = instr.nodes[i];
    for (int k = 0; k < NumDescs(n.kind); ++k) {
      ObjDesc& d = n.desc[k];
      d.poss_size = 0;
      if (d.set_size > 0) descs[num_descs++] = &d;
    }
  }
  if (num_descs == 0) return;
  const Grid& g = world.grid;
  for (int x = 0; x < g.width(); ++x) {
    for (int y = 0; y < g.height(); ++y) {
      const Object& o = g.at(x, y);
      if (o.empty()) continue;
      for (int k = 0; k < num_descs; ++k) {
        ObjDesc& d = *descs[k];
        if (d.poss_size < d.set_size && MatchesLook(d, o) && Contains(instr.ObjSet(d), o.id)) {
          instr.poss[d.pool_begin + d.poss_size++] = {x, y};
        }
      }
    }
  }
}

VerifyResult Verify(Instr& instr, const WorldState& world, Action action) {
  if (instr.num_nodes <= 0) return VerifyResult::kContinue;
  if (action == Action::kDrop) RetrackObjects(instr, world);
  return VerifyNode(instr, 0, world, action);
}

std::string Surface(const Instr& instr) {
  std::string s;
  if (instr.num_nodes > 0) AppendNode(instr, 0, &s);
  return s;
}

Instr ParseMission(std::string_view text) {
  MissionParser p(text);
  try {
    return p.Parse();
  } catch (const InstrError& e) {
    const std::string msg = e.what();
    if (msg.rfind("cannot parse mission", 0) == 0) throw;
    throw InstrError("cannot parse mission \"" + std::string(text) + "\": " + msg);
  }
}

Instr InstrFromJson(const nlohmann::json& j) { return FromJson(j, "instr"); }

nlohmann::json InstrToJson(const Instr& instr) {
  if (instr.num_nodes <= 0) return nlohmann::json();
  return NodeToJson(instr, 0);
}

int NumNavs(const Instr& instr) { return instr.num_nodes > 0 ? NumNavsNode(instr, 0) : 0; }

}  // namespace skillgrid::envs
