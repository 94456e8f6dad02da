// Tests for envs/instr.cpp: description resolution, the verifier, surface text and its parser,
// the conformance JSON form, and agreement with the reference traces.
#include "envs/instr.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace skillgrid::envs {
namespace {

using nlohmann::json;

constexpr ObjectType kBall = ObjectType::kBall;
constexpr ObjectType kKey = ObjectType::kKey;
constexpr ObjectType kBox = ObjectType::kBox;
constexpr ObjectType kDoor = ObjectType::kDoor;
constexpr ObjectType kWall = ObjectType::kWall;

ObjDesc D(std::optional<ObjectType> type, std::optional<Color> color = std::nullopt,
          DescLoc loc = DescLoc::kNone) {
  ObjDesc d;
  d.type = type;
  d.color = color;
  d.loc = loc;
  return d;
}

// A width x height room with grey walls (with identities) on its border, the agent at `agent`.
WorldState Room(int width, int height, Pos agent, int dir) {
  WorldState w;
  w.grid = Grid(width, height);
  for (int x = 0; x < width; ++x) {
    w.Place({x, 0}, MakeObject(kWall, Color::kGrey));
    w.Place({x, height - 1}, MakeObject(kWall, Color::kGrey));
  }
  for (int y = 1; y < height - 1; ++y) {
    w.Place({0, y}, MakeObject(kWall, Color::kGrey));
    w.Place({width - 1, y}, MakeObject(kWall, Color::kGrey));
  }
  w.agent_pos = agent;
  w.agent_dir = dir;
  w.max_steps = 1000;
  return w;
}

// Places an object and returns its identity.
uint16_t Put(WorldState& w, Pos p, ObjectType t, Color c, uint8_t state = 0) {
  w.Place(p, MakeObject(t, c, state));
  return w.grid.at(p).id;
}

// Applies an action to the world, then verifies it, as the episode layer does.
VerifyResult Act(Instr& instr, WorldState& w, Action a) {
  StepWorld(w, a);
  return Verify(instr, w, a);
}

std::vector<Pos> Poss(const Instr& in, const ObjDesc& d) {
  return std::vector<Pos>(in.ObjPoss(d).begin(), in.ObjPoss(d).end());
}
std::vector<uint16_t> Ids(const Instr& in, const ObjDesc& d) {
  return std::vector<uint16_t>(in.ObjSet(d).begin(), in.ObjSet(d).end());
}

constexpr VerifyResult kCont = VerifyResult::kContinue;
constexpr VerifyResult kSucc = VerifyResult::kSuccess;
constexpr VerifyResult kFail = VerifyResult::kFailure;

// ---------------------------------------------------------------------------------------------
// Reference traces.

std::string TracePath() {
  return std::string(SKILLGRID_SHARED_DIR) + "/conformance/babyai_public.jsonl";
}

std::vector<json> LoadTraces() {
  std::vector<json> out;
  std::ifstream in(TracePath());
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

const std::vector<json>& Traces() {
  static const std::vector<json> traces = LoadTraces();
  return traces;
}

Object ObjectFromTrace(const json& j) {
  ObjectType t;
  Color c;
  EXPECT_TRUE(ParseObjectType(j["type"].get<std::string>(), &t));
  EXPECT_TRUE(ParseColor(j["color"].get<std::string>(), &c));
  Object o = MakeObject(t, c, j["state"].get<uint8_t>());
  if (j.contains("contains") && !j["contains"].is_null()) {
    const Object inner = ObjectFromTrace(j["contains"]);
    o.inner_type = inner.type;
    o.inner_color = inner.color;
    o.inner_state = inner.state;
  }
  return o;
}

// Builds a trace's initial world by hand (Grid + Place), independently of state_io.
WorldState WorldFromTrace(const json& init) {
  WorldState w;
  w.grid = Grid(init["width"].get<int>(), init["height"].get<int>());
  for (const json& c : init["cells"]) {
    w.Place({c["x"].get<int>(), c["y"].get<int>()}, ObjectFromTrace(c));
  }
  w.agent_pos = {init["agent_pos"][0].get<int>(), init["agent_pos"][1].get<int>()};
  w.agent_dir = init["agent_dir"].get<int>();
  w.step_count = init["step_count"].get<int>();
  w.max_steps = init["max_steps"].get<int>();
  w.agent_view_size = init["agent_view_size"].get<int>();
  w.rooms.room_size = init["rooms"]["room_size"].get<int>();
  w.rooms.num_rows = init["rooms"]["num_rows"].get<int>();
  w.rooms.num_cols = init["rooms"]["num_cols"].get<int>();
  w.mission = init["mission"].get<std::string>();
  if (!init["carrying"].is_null()) {
    w.carrying = ObjectFromTrace(init["carrying"]);
    w.carrying.id = w.next_id++;
    w.carrying_pos = {-1, -1};
  }
  return w;
}

// ---------------------------------------------------------------------------------------------
// Resolution.

TEST(ResolveTest, ScansColumnMajor) {
  WorldState w = Room(7, 7, {3, 3}, 0);
  const uint16_t a = Put(w, {4, 1}, kBall, Color::kRed);
  const uint16_t b = Put(w, {2, 5}, kBall, Color::kRed);
  const uint16_t c = Put(w, {2, 1}, kBall, Color::kRed);
  Put(w, {1, 1}, kBall, Color::kBlue);  // wrong colour
  Put(w, {5, 5}, kKey, Color::kRed);    // wrong type
  std::vector<uint16_t> ids;
  std::vector<Pos> poss;
  FindMatchingObjs(D(kBall, Color::kRed), w, &ids, &poss);
  EXPECT_EQ(ids, (std::vector<uint16_t>{c, b, a}));
  EXPECT_EQ(poss, (std::vector<Pos>{{2, 1}, {2, 5}, {4, 1}}));
  FindMatchingObjs(D(kBall), w, &ids, &poss);
  EXPECT_EQ(ids.size(), 4u);
  FindMatchingObjs(D(kBox), w, &ids, &poss);
  EXPECT_TRUE(ids.empty());
  EXPECT_TRUE(poss.empty());
}

TEST(ResolveTest, TypeNoneMatchesWallsAndDoors) {
  WorldState w = Room(7, 7, {3, 3}, 0);    // 24 grey walls
  Put(w, {6, 3}, kDoor, Color::kGrey, 1);  // replaces a wall
  Put(w, {1, 1}, kKey, Color::kGrey);
  Put(w, {5, 5}, kBall, Color::kGreen);
  std::vector<uint16_t> ids;
  std::vector<Pos> poss;
  FindMatchingObjs(D(std::nullopt, Color::kGrey), w, &ids, &poss);
  EXPECT_EQ(ids.size(), 23u + 1u + 1u);  // walls, the door, the key
  FindMatchingObjs(D(std::nullopt), w, &ids, &poss);
  EXPECT_EQ(ids.size(), 26u);  // every object

  Instr grey = MakePickup(D(std::nullopt, Color::kGrey));
  Instr green = MakePickup(D(std::nullopt, Color::kGreen));
  ResolveInstr(grey, w);
  ResolveInstr(green, w);
  EXPECT_EQ(Surface(grey), "pick up a grey object");
  EXPECT_EQ(Surface(green), "pick up the green object");
}

TEST(ResolveTest, LocationsFollowDotProducts) {
  WorldState w = Room(7, 7, {3, 3}, 0);  // facing +x: left is -y
  Put(w, {5, 3}, kBall, Color::kRed);    // A: dead ahead
  Put(w, {3, 1}, kBall, Color::kRed);    // B: straight left
  Put(w, {1, 5}, kBall, Color::kRed);    // C: behind, right
  Put(w, {5, 1}, kBall, Color::kRed);    // D: front, left
  std::vector<uint16_t> ids;
  std::vector<Pos> poss;
  auto at = [&](DescLoc loc) {
    FindMatchingObjs(D(kBall, Color::kRed, loc), w, &ids, &poss);
    return poss;
  };
  EXPECT_EQ(at(DescLoc::kFront), (std::vector<Pos>{{5, 1}, {5, 3}}));
  EXPECT_EQ(at(DescLoc::kBehind), (std::vector<Pos>{{1, 5}}));
  EXPECT_EQ(at(DescLoc::kLeft), (std::vector<Pos>{{3, 1}, {5, 1}}));
  EXPECT_EQ(at(DescLoc::kRight), (std::vector<Pos>{{1, 5}}));

  w.agent_dir = 1;  // facing +y: left is +x
  EXPECT_EQ(at(DescLoc::kFront), (std::vector<Pos>{{1, 5}}));
  EXPECT_EQ(at(DescLoc::kBehind), (std::vector<Pos>{{3, 1}, {5, 1}}));
  EXPECT_EQ(at(DescLoc::kLeft), (std::vector<Pos>{{5, 1}, {5, 3}}));
  EXPECT_EQ(at(DescLoc::kRight), (std::vector<Pos>{{1, 5}}));
}

// Two rooms side by side (room_size 5): x 0..4 and 4..8, sharing the wall x = 4 with a door.
WorldState TwoRooms(Pos agent, int dir, bool with_rooms) {
  WorldState w = Room(9, 5, agent, dir);
  for (int y = 1; y < 4; ++y) Put(w, {4, y}, kWall, Color::kGrey);
  Put(w, {4, 2}, kDoor, Color::kRed, 1);
  if (with_rooms) w.rooms = RoomLayout{5, 1, 2};
  return w;
}

TEST(ResolveTest, LocationsStayInTheAgentsRoom) {
  WorldState w = TwoRooms({2, 2}, 0, true);
  Put(w, {3, 1}, kBall, Color::kBlue);
  Put(w, {7, 1}, kBall, Color::kBlue);
  std::vector<uint16_t> ids;
  std::vector<Pos> poss;
  FindMatchingObjs(D(kBall, std::nullopt, DescLoc::kFront), w, &ids, &poss);
  EXPECT_EQ(poss, (std::vector<Pos>{{3, 1}}));
  FindMatchingObjs(D(kBall), w, &ids, &poss);  // no location: no room restriction
  EXPECT_EQ(poss, (std::vector<Pos>{{3, 1}, {7, 1}}));
  // The door on the shared wall is inside both rooms.
  FindMatchingObjs(D(kDoor, std::nullopt, DescLoc::kFront), w, &ids, &poss);
  EXPECT_EQ(poss, (std::vector<Pos>{{4, 2}}));
  w.agent_pos = {6, 2};
  w.agent_dir = 2;
  FindMatchingObjs(D(kDoor, std::nullopt, DescLoc::kFront), w, &ids, &poss);
  EXPECT_EQ(poss, (std::vector<Pos>{{4, 2}}));
  FindMatchingObjs(D(kBall, std::nullopt, DescLoc::kFront), w, &ids, &poss);
  EXPECT_TRUE(poss.empty());  // (3,1) lies in front, but in the other room
  FindMatchingObjs(D(kBall, std::nullopt, DescLoc::kBehind), w, &ids, &poss);
  EXPECT_EQ(poss, (std::vector<Pos>{{7, 1}}));

  // Without a room layout the location filter spans the whole grid.
  WorldState flat = TwoRooms({2, 2}, 0, false);
  Put(flat, {3, 1}, kBall, Color::kBlue);
  Put(flat, {7, 1}, kBall, Color::kBlue);
  FindMatchingObjs(D(kBall, std::nullopt, DescLoc::kFront), flat, &ids, &poss);
  EXPECT_EQ(poss, (std::vector<Pos>{{3, 1}, {7, 1}}));
}

TEST(ResolveTest, CarriedObjectIsACandidate) {
  // PutNext*Carrying: the reference resolved while the object was still on the floor.
  WorldState w = Room(7, 7, {3, 3}, 0);
  Put(w, {5, 5}, kBall, Color::kRed);
  w.carrying = MakeObject(kBox, Color::kYellow);
  w.carrying.id = w.next_id++;
  w.carrying_pos = {-1, -1};
  Instr in = MakePutNext(D(kBox, Color::kYellow), D(kBall, Color::kRed));
  ResolveInstr(in, w);
  EXPECT_EQ(Ids(in, in.root().desc[0]), (std::vector<uint16_t>{w.carrying.id}));
  EXPECT_TRUE(Poss(in, in.root().desc[0]).empty());  // no known cell
  EXPECT_EQ(Surface(in), "put the yellow box next to the red ball");
  // No location test for it: it counts even "on your left".
  Instr loc = MakePickup(D(kBox, std::nullopt, DescLoc::kLeft));
  ResolveInstr(loc, w);
  EXPECT_EQ(loc.root().desc[0].set_size, 1);
  // A known stale cell (carrying_pos) is tracked until the next drop.
  w.carrying_pos = {1, 1};
  ResolveInstr(in, w);
  EXPECT_EQ(Poss(in, in.root().desc[0]), (std::vector<Pos>{{1, 1}}));
}

TEST(ResolveTest, ArticleFlagsComeFromMatchCounts) {
  WorldState w = Room(7, 7, {3, 3}, 0);
  Put(w, {1, 1}, kBall, Color::kRed);
  Put(w, {1, 2}, kBall, Color::kRed);
  Put(w, {5, 5}, kKey, Color::kBlue);
  Instr in = MakeAnd(MakeGoTo(D(kBall, Color::kRed)), MakePickup(D(kKey)));
  ResolveInstr(in, w);
  EXPECT_EQ(Surface(in), "go to a red ball and pick up the key");
  ResetVerifier(in, w);
  EXPECT_EQ(Surface(in), "go to a red ball and pick up the key");
}

// ---------------------------------------------------------------------------------------------
// Verifier: action instructions.

TEST(VerifyGoToTest, SucceedsOnAnyActionFacingATarget) {
  WorldState w = Room(7, 7, {3, 3}, 0);
  Put(w, {3, 2}, kBall, Color::kRed);
  Put(w, {4, 3}, kKey, Color::kRed);
  Instr in = MakeGoTo(D(kBall, Color::kRed));
  ResetVerifier(in, w);
  EXPECT_EQ(Verify(in, w, Action::kDone), kCont);  // facing the key
  EXPECT_EQ(Act(in, w, Action::kRight), kCont);    // facing down
  EXPECT_EQ(Act(in, w, Action::kRight), kCont);    // facing left
  EXPECT_EQ(Act(in, w, Action::kRight), kSucc);    // a turn that ends facing the target counts
  EXPECT_EQ(Verify(in, w, Action::kDone), kSucc);
  EXPECT_EQ(Verify(in, w, Action::kToggle), kSucc);
  const Instr copy = in;  // a copy carries its resolution
  Instr again = copy;
  EXPECT_EQ(Verify(again, w, Action::kForward), kSucc);
}

TEST(VerifyGoToTest, PickedUpObjectKeepsItsCellUntilADrop) {
  WorldState w = Room(7, 7, {3, 3}, 0);
  Put(w, {4, 3}, kBall, Color::kRed);
  Instr in = MakeGoTo(D(kBall));
  ResetVerifier(in, w);
  EXPECT_EQ(Act(in, w, Action::kPickup), kSucc);  // the old cell is still tracked
  EXPECT_EQ(Act(in, w, Action::kLeft), kCont);
  EXPECT_EQ(Act(in, w, Action::kRight), kSucc);  // no drop yet: still tracked, though empty
  // A failed drop (front cell full) re-tracks too: the carried ball drops out.
  w.agent_dir = 3;
  Put(w, {3, 2}, kKey, Color::kBlue);
  EXPECT_EQ(Act(in, w, Action::kDrop), kCont);
  EXPECT_EQ(in.root().desc[0].poss_size, 0);
  EXPECT_EQ(Act(in, w, Action::kRight), kCont);  // the old cell no longer counts
  // Dropping it elsewhere tracks the new cell.
  EXPECT_EQ(Act(in, w, Action::kRight), kCont);  // facing (3,4)
  EXPECT_EQ(Act(in, w, Action::kDrop), kSucc);
  EXPECT_EQ(Poss(in, in.root().desc[0]), (std::vector<Pos>{{3, 4}}));
}

// A room with a red door on the right wall (agent facing it) and a locked blue door above.
WorldState DoorRoom(uint8_t red_state) {
  WorldState w = Room(7, 7, {5, 3}, 0);
  Put(w, {6, 3}, kDoor, Color::kRed, red_state);
  Put(w, {5, 0}, kDoor, Color::kBlue, 2);
  return w;
}

TEST(VerifyOpenTest, OpeningTheTargetSucceeds) {
  WorldState w = DoorRoom(1);
  Instr in = MakeOpen(D(kDoor, Color::kRed));
  ResetVerifier(in, w);
  EXPECT_EQ(Act(in, w, Action::kDone), kCont);
  EXPECT_EQ(Act(in, w, Action::kToggle), kSucc);
  EXPECT_EQ(Verify(in, w, Action::kDone), kCont);  // only a toggle counts
}

TEST(VerifyOpenTest, WrongDoorContinuesOrFailsWhenStrict) {
  for (bool strict : {false, true}) {
    WorldState w = DoorRoom(1);
    Instr in = MakeOpen(D(kDoor, Color::kBlue), strict);
    ResetVerifier(in, w);
    EXPECT_EQ(Act(in, w, Action::kToggle), strict ? kFail : kCont);  // opened the red door
    w.agent_pos = {5, 1};
    EXPECT_EQ(Act(in, w, Action::kLeft), kCont);  // facing the blue door at (5,0)
    // Facing the locked target without its key: the toggle does nothing.
    EXPECT_EQ(Act(in, w, Action::kToggle), strict ? kFail : kCont);
    // Toggling while facing no door is never a failure.
    EXPECT_EQ(Act(in, w, Action::kLeft), kCont);
    EXPECT_EQ(Act(in, w, Action::kToggle), kCont);
  }
}

TEST(VerifyOpenTest, ClosingTheTargetIsNotSuccess) {
  for (bool strict : {false, true}) {
    WorldState w = DoorRoom(0);  // red door already open
    Instr in = MakeOpen(D(kDoor, Color::kRed), strict);
    ResetVerifier(in, w);
    EXPECT_EQ(Act(in, w, Action::kToggle), strict ? kFail : kCont);  // closed it
    if (!strict) {
      EXPECT_EQ(Act(in, w, Action::kToggle), kSucc);  // reopened
    }
  }
}

TEST(VerifyPickupTest, PicksUpATarget) {
  WorldState w = Room(7, 7, {3, 3}, 0);
  Put(w, {4, 3}, kBall, Color::kRed);
  Put(w, {3, 2}, kKey, Color::kBlue);
  Instr in = MakePickup(D(kBall, Color::kRed));
  ResetVerifier(in, w);
  EXPECT_EQ(Act(in, w, Action::kDone), kCont);
  EXPECT_EQ(Act(in, w, Action::kPickup), kSucc);
}

TEST(VerifyPickupTest, WrongObjectContinuesOrFailsWhenStrict) {
  for (bool strict : {false, true}) {
    WorldState w = Room(7, 7, {3, 3}, 3);
    Put(w, {4, 3}, kBall, Color::kRed);
    Put(w, {3, 2}, kKey, Color::kBlue);
    Instr in = MakePickup(D(kBall), strict);
    ResetVerifier(in, w);
    EXPECT_EQ(Act(in, w, Action::kPickup), strict ? kFail : kCont);  // picked up the key
  }
}

TEST(VerifyPickupTest, FullHandsNeverSucceed) {
  WorldState w = Room(7, 7, {3, 3}, 3);
  Put(w, {4, 3}, kBall, Color::kRed);
  Put(w, {3, 2}, kKey, Color::kBlue);
  Instr in = MakePickup(D(kBall));
  ResetVerifier(in, w);
  EXPECT_EQ(Act(in, w, Action::kPickup), kCont);  // the key
  EXPECT_EQ(Act(in, w, Action::kRight), kCont);   // facing the ball, key in hand
  EXPECT_EQ(Act(in, w, Action::kPickup), kCont);  // hands full: nothing happens
  Instr strict = MakePickup(D(kBall), true);
  ResetVerifier(strict, w);
  EXPECT_EQ(Act(strict, w, Action::kPickup), kFail);  // something (else) in hand
  // Put the key down, then the ball can be picked up.
  EXPECT_EQ(Act(in, w, Action::kLeft), kCont);
  EXPECT_EQ(Act(in, w, Action::kDrop), kCont);
  EXPECT_EQ(Act(in, w, Action::kRight), kCont);
  EXPECT_EQ(Act(in, w, Action::kPickup), kSucc);
}

TEST(VerifyPickupTest, PreCarryingIsWhatThisNodeLastSaw) {
  // The ball is in hand at reset: preCarrying starts as None, so a pickup on the first step
  // is credited even though the hands were full (the reference's quirk).
  WorldState w = Room(7, 7, {3, 3}, 0);
  Put(w, {4, 3}, kKey, Color::kBlue);
  w.carrying = MakeObject(kBall, Color::kRed);
  w.carrying.id = w.next_id++;
  Instr in = MakePickup(D(kBall));
  ResetVerifier(in, w);
  Instr later = in;
  EXPECT_EQ(Act(in, w, Action::kPickup), kSucc);
  // After one verification with the ball in hand, the same pickup no longer counts.
  EXPECT_EQ(Verify(later, w, Action::kLeft), kCont);
  EXPECT_EQ(Verify(later, w, Action::kPickup), kCont);
}

// Agent at (3,3) facing right at a red ball (4,3); a blue key at (5,1).
WorldState PutNextRoom() {
  WorldState w = Room(7, 7, {3, 3}, 0);
  Put(w, {4, 3}, kBall, Color::kRed);
  Put(w, {5, 1}, kKey, Color::kBlue);
  return w;
}

TEST(VerifyPutNextTest, DropAtManhattanDistanceOne) {
  WorldState w = PutNextRoom();
  Instr in = MakePutNext(D(kBall, Color::kRed), D(kKey, Color::kBlue));
  ResetVerifier(in, w);
  EXPECT_EQ(Act(in, w, Action::kPickup), kCont);
  w.agent_pos = {4, 3};
  w.agent_dir = 3;  // front (4,2): diagonal to the key
  EXPECT_EQ(Act(in, w, Action::kDrop), kCont);
  EXPECT_EQ(Act(in, w, Action::kPickup), kCont);
  w.agent_dir = 0;  // front (5,3): two cells below the key
  EXPECT_EQ(Act(in, w, Action::kDrop), kCont);
  EXPECT_EQ(Act(in, w, Action::kPickup), kCont);
  w.agent_pos = {3, 1};  // front (4,1): next to the key
  EXPECT_EQ(Act(in, w, Action::kDone), kCont);
  EXPECT_EQ(Act(in, w, Action::kDrop), kSucc);
}

TEST(VerifyPutNextTest, OnlyTheDescribedObjectCounts) {
  WorldState w = PutNextRoom();
  Put(w, {3, 2}, kBall, Color::kGreen);
  Instr in = MakePutNext(D(kBall, Color::kRed), D(kKey, Color::kBlue));
  ResetVerifier(in, w);
  w.agent_dir = 3;
  EXPECT_EQ(Act(in, w, Action::kPickup), kCont);  // the green ball
  w.agent_pos = {3, 1};
  w.agent_dir = 0;
  EXPECT_EQ(Act(in, w, Action::kDrop), kCont);  // next to the key, but the wrong ball
}

TEST(VerifyPutNextTest, CarriedAtStartIsNotCreditedOnTheFirstDrop) {
  WorldState w = Room(7, 7, {3, 1}, 0);
  Put(w, {5, 1}, kKey, Color::kBlue);
  w.carrying = MakeObject(kBall, Color::kRed);
  w.carrying.id = w.next_id++;
  Instr in = MakePutNext(D(kBall, Color::kRed), D(kKey, Color::kBlue));
  ResetVerifier(in, w);
  EXPECT_EQ(in.root().desc[0].set_size, 1);
  EXPECT_EQ(Act(in, w, Action::kDrop), kCont);  // preCarrying was still None
  EXPECT_EQ(Act(in, w, Action::kPickup), kCont);
  EXPECT_EQ(Act(in, w, Action::kDrop), kSucc);
}

TEST(VerifyPutNextTest, FixedPositionsAreReTracked) {
  WorldState w = PutNextRoom();
  Instr in = MakePutNext(D(kBall, Color::kRed), D(kKey, Color::kBlue));
  ResetVerifier(in, w);
  // Move the key from (5,1) to (1,4).
  w.agent_pos = {5, 2};
  w.agent_dir = 3;
  EXPECT_EQ(Act(in, w, Action::kPickup), kCont);
  w.agent_pos = {1, 3};
  w.agent_dir = 1;
  EXPECT_EQ(Act(in, w, Action::kDrop), kCont);
  EXPECT_EQ(Poss(in, in.root().desc[1]), (std::vector<Pos>{{1, 4}}));
  // Next to the old key cell: nothing.
  w.agent_pos = {3, 3};
  w.agent_dir = 0;
  EXPECT_EQ(Act(in, w, Action::kPickup), kCont);
  w.agent_pos = {3, 1};
  EXPECT_EQ(Act(in, w, Action::kDrop), kCont);
  EXPECT_EQ(Act(in, w, Action::kPickup), kCont);
  // Next to the new one.
  w.agent_pos = {3, 4};
  w.agent_dir = 2;
  EXPECT_EQ(Act(in, w, Action::kDrop), kSucc);
}

TEST(VerifyPutNextTest, StrictFailsOnAnyPickup) {
  WorldState w = PutNextRoom();
  Instr loose = MakePutNext(D(kBall, Color::kRed), D(kKey, Color::kBlue));
  Instr strict = MakePutNext(D(kBall, Color::kRed), D(kKey, Color::kBlue), true);
  ResetVerifier(loose, w);
  ResetVerifier(strict, w);
  StepWorld(w, Action::kPickup);
  EXPECT_EQ(Verify(loose, w, Action::kPickup), kCont);
  EXPECT_EQ(Verify(strict, w, Action::kPickup), kFail);
}

// ---------------------------------------------------------------------------------------------
// Verifier: connectives.

// Agent (3,3) facing right at a red ball (4,3); a blue key above it at (3,2); closed doors:
// red on the left wall (0,3), green on the bottom wall (3,6). Tests teleport the agent.
WorldState SeqRoom() {
  WorldState w = Room(7, 7, {3, 3}, 0);
  Put(w, {4, 3}, kBall, Color::kRed);
  Put(w, {3, 2}, kKey, Color::kBlue);
  Put(w, {0, 3}, kDoor, Color::kRed, 1);
  Put(w, {3, 6}, kDoor, Color::kGreen, 1);
  return w;
}

TEST(VerifyBeforeTest, SecondPartCountsOnlyAfterTheFirst) {
  WorldState w = SeqRoom();
  Instr in = MakeBefore(MakeGoTo(D(kKey)), MakeGoTo(D(kBall)));
  ResetVerifier(in, w);
  EXPECT_EQ(Verify(in, w, Action::kDone), kCont);  // facing the ball first does not count
  EXPECT_EQ(Act(in, w, Action::kLeft), kCont);     // the key: first part done
  EXPECT_TRUE(in.root().a_done);
  EXPECT_EQ(Act(in, w, Action::kRight), kSucc);
}

TEST(VerifyBeforeTest, BothPartsCanCompleteOnTheSameStep) {
  WorldState w = SeqRoom();
  Instr in = MakeBefore(MakeGoTo(D(kBall, Color::kRed)), MakePickup(D(kBall)));
  ResetVerifier(in, w);
  EXPECT_EQ(Act(in, w, Action::kPickup), kSucc);

  // Pickup then Pickup of the same object: the second's preCarrying is still None.
  WorldState w2 = SeqRoom();
  Instr twice = MakeBefore(MakePickup(D(kBall, Color::kRed)), MakePickup(D(kBall)));
  ResetVerifier(twice, w2);
  EXPECT_EQ(Act(twice, w2, Action::kPickup), kSucc);
}

TEST(VerifyBeforeTest, FailureOfEitherPartFails) {
  {
    WorldState w = SeqRoom();
    w.agent_pos = {1, 3};
    w.agent_dir = 2;  // facing the red door
    Instr in = MakeBefore(MakeOpen(D(kDoor, Color::kGreen), true), MakeGoTo(D(kKey)));
    ResetVerifier(in, w);
    EXPECT_EQ(Act(in, w, Action::kToggle), kFail);
  }
  {
    WorldState w = SeqRoom();
    Instr in = MakeBefore(MakeGoTo(D(kKey)), MakeOpen(D(kDoor, Color::kGreen), true));
    ResetVerifier(in, w);
    EXPECT_EQ(Act(in, w, Action::kLeft), kCont);  // first part done
    w.agent_pos = {1, 3};
    w.agent_dir = 2;
    EXPECT_EQ(Act(in, w, Action::kToggle), kFail);
  }
  {
    // Before the first part succeeds, the second is not verified at all.
    WorldState w = SeqRoom();
    w.agent_pos = {1, 3};
    w.agent_dir = 2;
    Instr in = MakeBefore(MakeGoTo(D(kKey)), MakeOpen(D(kDoor, Color::kGreen), true));
    ResetVerifier(in, w);
    EXPECT_EQ(Act(in, w, Action::kToggle), kCont);
  }
}

TEST(VerifyAfterTest, SecondPartIsDoneFirst) {
  WorldState w = SeqRoom();
  // "go to the ball after you go to the key"
  Instr in = MakeAfter(MakeGoTo(D(kBall)), MakeGoTo(D(kKey)));
  ResetVerifier(in, w);
  EXPECT_EQ(Surface(in), "go to the ball after you go to the key");
  EXPECT_EQ(Verify(in, w, Action::kDone), kCont);  // the ball first does not count
  EXPECT_EQ(Act(in, w, Action::kLeft), kCont);     // the key
  EXPECT_TRUE(in.root().b_done);
  EXPECT_FALSE(in.root().a_done);
  EXPECT_EQ(Act(in, w, Action::kRight), kSucc);

  WorldState w2 = SeqRoom();
  w2.agent_pos = {1, 3};
  w2.agent_dir = 2;
  Instr fail = MakeAfter(MakeGoTo(D(kKey)), MakeOpen(D(kDoor, Color::kGreen), true));
  ResetVerifier(fail, w2);
  EXPECT_EQ(Act(fail, w2, Action::kToggle), kFail);
}

TEST(VerifyAndTest, LatchesEachSideInAnyOrder) {
  for (bool ball_first : {true, false}) {
    WorldState w = SeqRoom();
    w.agent_dir = ball_first ? 0 : 3;
    const Action turn = ball_first ? Action::kRight : Action::kLeft;
    Instr in = MakeAnd(MakeGoTo(D(kBall)), MakeGoTo(D(kKey)));
    ResetVerifier(in, w);
    EXPECT_EQ(Verify(in, w, Action::kDone), kCont);
    EXPECT_EQ(in.root().a_done, ball_first);
    EXPECT_EQ(in.root().b_done, !ball_first);
    EXPECT_EQ(Act(in, w, turn), kCont);  // facing away: the latch holds
    EXPECT_EQ(Act(in, w, turn), kCont);
    EXPECT_EQ(Act(in, w, turn), kSucc);  // facing the other one
  }
}

TEST(VerifyAndTest, SubFailuresAreIgnored) {
  WorldState w = SeqRoom();
  Instr in = MakeAnd(MakeOpen(D(kDoor, Color::kGreen), true), MakeGoTo(D(kKey)));
  ResetVerifier(in, w);
  w.agent_pos = {1, 3};
  w.agent_dir = 2;
  EXPECT_EQ(Act(in, w, Action::kToggle), kCont);  // wrong door: strict failure ignored
  w.agent_pos = {3, 5};
  w.agent_dir = 1;
  EXPECT_EQ(Act(in, w, Action::kToggle), kCont);  // the green door is open now
  EXPECT_TRUE(in.root().a_done);
  w.agent_pos = {3, 3};
  w.agent_dir = 0;
  EXPECT_EQ(Act(in, w, Action::kLeft), kSucc);
}

TEST(VerifyAndTest, BothSidesOnOneStepAndNestedInBefore) {
  WorldState w = SeqRoom();
  Instr in = MakeAnd(MakeGoTo(D(kBall)), MakePickup(D(kBall, Color::kRed)));
  ResetVerifier(in, w);
  EXPECT_EQ(Act(in, w, Action::kPickup), kSucc);

  // (go to the key and go to the ball), then go to the red door
  WorldState w2 = SeqRoom();
  Instr seq =
      MakeBefore(MakeAnd(MakeGoTo(D(kKey)), MakeGoTo(D(kBall))), MakeGoTo(D(kDoor, Color::kRed)));
  ResetVerifier(seq, w2);
  EXPECT_EQ(seq.num_nodes, 5);
  EXPECT_EQ(Verify(seq, w2, Action::kDone), kCont);
  w2.agent_pos = {1, 3};
  w2.agent_dir = 2;
  EXPECT_EQ(Verify(seq, w2, Action::kDone), kCont);  // the door too early
  w2.agent_pos = {3, 3};
  w2.agent_dir = 3;
  EXPECT_EQ(Verify(seq, w2, Action::kDone), kCont);  // And done
  w2.agent_pos = {1, 3};
  w2.agent_dir = 2;
  EXPECT_EQ(Verify(seq, w2, Action::kDone), kSucc);
}

TEST(VerifyTest, ResetClearsLatchesAndPreCarrying) {
  WorldState w = SeqRoom();
  Instr in = MakeAnd(MakeGoTo(D(kBall)), MakePickup(D(kKey)));
  ResetVerifier(in, w);
  EXPECT_EQ(Verify(in, w, Action::kDone), kCont);
  EXPECT_EQ(Act(in, w, Action::kPickup), kCont);  // the ball: Pickup now remembers it
  EXPECT_TRUE(in.root().a_done);
  EXPECT_EQ(in.nodes[2].kind, InstrKind::kPickup);
  EXPECT_NE(in.nodes[2].pre_carrying, 0);
  ResetVerifier(in, w);
  EXPECT_FALSE(in.root().a_done);
  for (int i = 0; i < in.num_nodes; ++i) EXPECT_EQ(in.nodes[i].pre_carrying, 0);
}

TEST(NumNavsTest, CountsNavigations) {
  EXPECT_EQ(NumNavs(MakeGoTo(D(kBall))), 1);
  EXPECT_EQ(NumNavs(MakeOpen(D(kDoor))), 1);
  EXPECT_EQ(NumNavs(MakePutNext(D(kBall), D(kKey))), 2);
  EXPECT_EQ(NumNavs(MakeBefore(MakeAnd(MakePutNext(D(kBall), D(kKey)), MakeGoTo(D(kBall))),
                               MakePickup(D(kKey)))),
            4);
}

// ---------------------------------------------------------------------------------------------
// Surface text and parsing.

TEST(SurfaceTest, ExactText) {
  ObjDesc red_ball = D(kBall, Color::kRed);
  red_ball.definite = true;
  ObjDesc grey_key_left = D(kKey, Color::kGrey, DescLoc::kLeft);
  ObjDesc door_front = D(kDoor, std::nullopt, DescLoc::kFront);
  door_front.definite = true;
  ObjDesc blue_box = D(kBox, Color::kBlue);
  blue_box.definite = true;
  ObjDesc behind = D(kKey, std::nullopt, DescLoc::kBehind);
  ObjDesc right = D(kBall, std::nullopt, DescLoc::kRight);
  EXPECT_EQ(Surface(MakeGoTo(red_ball)), "go to the red ball");
  EXPECT_EQ(Surface(MakePickup(grey_key_left)), "pick up a grey key on your left");
  EXPECT_EQ(Surface(MakeOpen(door_front)), "open the door in front of you");
  EXPECT_EQ(Surface(MakePutNext(blue_box, D(kDoor))), "put the blue box next to a door");
  EXPECT_EQ(Surface(MakePickup(D(std::nullopt))), "pick up a object");  // as the reference
  EXPECT_EQ(Surface(MakeAnd(MakeGoTo(behind), MakeGoTo(right))),
            "go to a key behind you and go to a ball on your right");
  EXPECT_EQ(Surface(MakeBefore(MakeGoTo(red_ball), MakeOpen(D(kDoor)))),
            "go to the red ball, then open a door");
  EXPECT_EQ(Surface(MakeAfter(MakeGoTo(red_ball), MakeOpen(D(kDoor)))),
            "go to the red ball after you open a door");
}

TEST(ParseTest, BuildsTheTree) {
  Instr in = ParseMission(
      "put the red box next to a grey door and open a purple door on your left after you pick "
      "up a key and go to the yellow box");
  ASSERT_EQ(in.num_nodes, 7);
  const InstrNode& root = in.root();
  EXPECT_EQ(root.kind, InstrKind::kAfter);
  const InstrNode& a = in.nodes[root.a];
  const InstrNode& b = in.nodes[root.b];
  EXPECT_EQ(a.kind, InstrKind::kAnd);
  EXPECT_EQ(b.kind, InstrKind::kAnd);
  const InstrNode& put = in.nodes[a.a];
  EXPECT_EQ(put.kind, InstrKind::kPutNext);
  EXPECT_EQ(put.desc[0].type, kBox);
  EXPECT_EQ(put.desc[0].color, Color::kRed);
  EXPECT_TRUE(put.desc[0].definite);
  EXPECT_EQ(put.desc[1].type, kDoor);
  EXPECT_FALSE(put.desc[1].definite);
  const InstrNode& open = in.nodes[a.b];
  EXPECT_EQ(open.kind, InstrKind::kOpen);
  EXPECT_EQ(open.desc[0].loc, DescLoc::kLeft);
  EXPECT_EQ(in.nodes[b.a].kind, InstrKind::kPickup);
  EXPECT_FALSE(in.nodes[b.a].desc[0].color.has_value());
  EXPECT_EQ(in.nodes[b.b].kind, InstrKind::kGoTo);
  EXPECT_EQ(NumNavs(in), 5);

  Instr obj = ParseMission("pick up the green object");
  EXPECT_FALSE(obj.root().desc[0].type.has_value());
  EXPECT_EQ(obj.root().desc[0].color, Color::kGreen);
  EXPECT_EQ(ParseMission("open a door behind you").root().desc[0].loc, DescLoc::kBehind);
  EXPECT_EQ(ParseMission("go to the door in front of you").root().desc[0].loc, DescLoc::kFront);
  EXPECT_EQ(ParseMission("open the red door, then open the blue door").root().kind,
            InstrKind::kBefore);
}

std::string ParseError(const std::string& text) {
  try {
    ParseMission(text);
  } catch (const InstrError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ParseTest, ErrorsNameTheWord) {
  EXPECT_NE(ParseError("go ot the red ball").find("word 2 ('ot')"), std::string::npos);
  EXPECT_NE(ParseError("go to teh red ball").find("word 3 ('teh')"), std::string::npos);
  EXPECT_NE(ParseError("go to the pink ball").find("word 4 ('pink')"), std::string::npos);
  EXPECT_NE(ParseError("go to the red").find("at the end"), std::string::npos);
  EXPECT_NE(ParseError("pick up the red door").find("word 5 ('door')"), std::string::npos);
  EXPECT_NE(ParseError("open the red ball").find("word 4 ('ball')"), std::string::npos);
  EXPECT_NE(ParseError("put the door next to a ball").find("word 3 ('door')"), std::string::npos);
  EXPECT_NE(ParseError("go to a key on your top").find("word 7 ('top')"), std::string::npos);
  EXPECT_NE(ParseError("go to a key, then").find("at the end"), std::string::npos);
  EXPECT_NE(ParseError("go to a key, then go to a ball, then go to a box").find("word 11"),
            std::string::npos);
  EXPECT_NE(ParseError("go to a key and go to a ball and go to a box").find("word 10 ('and')"),
            std::string::npos);
  EXPECT_NE(ParseError("").find("empty"), std::string::npos);
  EXPECT_NE(ParseError("go to a key pick up a ball").find("word 5 ('pick')"), std::string::npos);
  EXPECT_NE(ParseError("dance").find("word 1 ('dance')"), std::string::npos);
  for (const char* bad : {"go ot the red ball", "pick up the red door", ""}) {
    const std::string msg = ParseError(bad);
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind("cannot parse mission", 0), 0u) << msg;
  }
}

TEST(ParseTest, RoundTripsEveryTraceMission) {
  ASSERT_EQ(Traces().size(), 574u) << TracePath();
  std::set<std::string> seen;
  for (const json& t : Traces()) {
    const std::string mission = t["initial"]["mission"].get<std::string>();
    seen.insert(mission);
    EXPECT_EQ(Surface(ParseMission(mission)), mission);
  }
  EXPECT_GT(seen.size(), 150u);
}

// ---------------------------------------------------------------------------------------------
// JSON.

TEST(JsonTest, RoundTripsEveryTraceInstr) {
  for (const json& t : Traces()) {
    const json& j = t["initial"]["instr"];
    const Instr in = InstrFromJson(j);
    EXPECT_EQ(InstrToJson(in), j) << t["level"];
    // Text and JSON describe the same tree (the text has no strict flags).
    json loose = j;
    std::function<void(json&)> clear = [&](json& n) {
      if (n.contains("strict")) n["strict"] = false;
      if (n.contains("a")) clear(n["a"]);
      if (n.contains("b")) clear(n["b"]);
    };
    clear(loose);
    const Instr parsed = ParseMission(t["initial"]["mission"].get<std::string>());
    EXPECT_EQ(InstrToJson(parsed), loose) << t["level"];
  }
}

std::string JsonError(const json& j) {
  try {
    InstrFromJson(j);
  } catch (const InstrError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(JsonTest, BadInputThrowsNamingTheProblem) {
  const json ball = {{"type", "ball"}, {"color", "red"}, {"loc", nullptr}};
  const json door = {{"type", "door"}, {"color", nullptr}, {"loc", "left"}};
  const json go = {{"kind", "goto"}, {"desc", ball}};
  EXPECT_EQ(JsonError(go), "(no error)");
  struct Case {
    json j;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {{{"kind", "fly"}, {"desc", ball}}, "instr.kind: unknown kind 'fly'"},
      {{{"desc", ball}}, "instr: missing field 'kind'"},
      {{{"kind", 3}, {"desc", ball}}, "instr.kind: expected a string"},
      {json::array(), "instr: expected a JSON object"},
      {{{"kind", "goto"}}, "instr: missing field 'desc'"},
      {{{"kind", "goto"}, {"desc", {{"type", "wall"}, {"color", nullptr}, {"loc", nullptr}}}},
       "instr.desc.type: unknown object type 'wall'"},
      {{{"kind", "goto"}, {"desc", {{"type", "ball"}, {"color", "pink"}, {"loc", nullptr}}}},
       "instr.desc.color: unknown colour 'pink'"},
      {{{"kind", "goto"}, {"desc", {{"type", "ball"}, {"color", nullptr}, {"loc", "above"}}}},
       "instr.desc.loc: unknown location 'above'"},
      {{{"kind", "goto"}, {"desc", {{"type", "ball"}, {"loc", nullptr}}}},
       "instr.desc: missing field 'color'"},
      {{{"kind", "goto"}, {"desc", {{"type", 5}, {"color", nullptr}, {"loc", nullptr}}}},
       "instr.desc.type: expected a string or null"},
      {{{"kind", "pickup"}, {"desc", ball}}, "instr: missing field 'strict'"},
      {{{"kind", "pickup"}, {"desc", ball}, {"strict", "yes"}}, "instr.strict: expected true"},
      {{{"kind", "pickup"}, {"desc", door}, {"strict", false}}, "instr: Pickup: cannot pick up"},
      {{{"kind", "open"}, {"desc", ball}, {"strict", false}}, "instr: Open: the description"},
      {{{"kind", "putnext"}, {"desc_move", ball}, {"strict", false}},
       "instr: missing field 'desc_fixed'"},
      {{{"kind", "putnext"}, {"desc_move", door}, {"desc_fixed", ball}, {"strict", false}},
       "instr: PutNext: cannot move a door"},
      {{{"kind", "and"}, {"a", go}}, "instr: missing field 'b'"},
      {{{"kind", "and"}, {"a", go}, {"b", {{"kind", "goto"}, {"desc", {{"type", "ball"}}}}}},
       "instr.b.desc: missing field 'color'"},
      {{{"kind", "and"}, {"a", go}, {"b", {{"kind", "and"}, {"a", go}, {"b", go}}}},
       "instr: And: both parts must be actions, not 'and'"},
      {{{"kind", "before"}, {"a", go}, {"b", {{"kind", "after"}, {"a", go}, {"b", go}}}},
       "instr: Before: both parts must be actions or 'and', not 'after'"},
  };
  for (const Case& c : cases) {
    const std::string msg = JsonError(c.j);
    EXPECT_EQ(msg.rfind(c.expect, 0), 0u) << "got: " << msg << "\nwant prefix: " << c.expect;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  // Every error is a std::runtime_error.
  EXPECT_THROW(InstrFromJson(json::object()), std::runtime_error);
}

// ---------------------------------------------------------------------------------------------
// Agreement with the reference traces.

TEST(TraceTest, ResolvedArticlesReproduceTheMission) {
  for (const json& t : Traces()) {
    const json& init = t["initial"];
    WorldState w = WorldFromTrace(init);
    Instr in = InstrFromJson(init["instr"]);
    ResolveInstr(in, w);
    EXPECT_EQ(Surface(in), init["mission"].get<std::string>()) << t["level"] << " " << t["seed"];
  }
}

TEST(TraceTest, MaxStepsFollowsNumNavs) {
  // Levels whose max_steps is num_navs * room_size^2 * rows * cols (not a fixed value).
  const std::set<std::string> formula = {
      "BabyAI-GoToSeq-v0",       "BabyAI-GoToSeqS5R2-v0", "BabyAI-Synth-v0",
      "BabyAI-SynthS5R2-v0",     "BabyAI-SynthLoc-v0",    "BabyAI-SynthSeq-v0",
      "BabyAI-MiniBossLevel-v0", "BabyAI-BossLevel-v0",   "BabyAI-BossLevelNoUnlock-v0",
      "BabyAI-PutNextLocal-v0",  "BabyAI-GoTo-v0",        "BabyAI-Pickup-v0"};
  int checked = 0;
  for (const json& t : Traces()) {
    if (!formula.count(t["level"].get<std::string>())) continue;
    const json& init = t["initial"];
    const json& r = init["rooms"];
    const int rs = r["room_size"].get<int>();
    const int expect = NumNavs(InstrFromJson(init["instr"])) * rs * rs * r["num_rows"].get<int>() *
                       r["num_cols"].get<int>();
    EXPECT_EQ(init["max_steps"].get<int>(), expect) << t["level"] << " " << t["seed"];
    ++checked;
  }
  EXPECT_EQ(checked, 72);
}

// Replays every trace with StepWorld and this verifier, and compares what the instruction
// decides (reward and termination) with the reference after every step.
TEST(TraceTest, VerifierMatchesTheReference) {
  int steps = 0, successes = 0, failures = 0;
  for (const json& t : Traces()) {
    const json& init = t["initial"];
    WorldState w = WorldFromTrace(init);
    Instr in = InstrFromJson(init["instr"]);
    ResetVerifier(in, w);
    int k = 0;
    for (const json& s : t["steps"]) {
      const Action a = static_cast<Action>(s["action"].get<int>());
      StepOutcome out = StepWorld(w, a);
      const VerifyResult r = Verify(in, w, a);
      float reward = out.reward;
      bool terminated = out.terminated;
      if (r == VerifyResult::kSuccess) {
        terminated = true;
        reward = SuccessReward(w);
        ++successes;
      } else if (r == VerifyResult::kFailure) {
        terminated = true;
        reward = 0.0f;
        ++failures;
      }
      ASSERT_EQ(terminated, s["terminated"].get<bool>())
          << t["level"] << " seed " << t["seed"] << " step " << k;
      ASSERT_NEAR(reward, s["reward"].get<double>(), 1e-6)
          << t["level"] << " seed " << t["seed"] << " step " << k;
      ++k;
      ++steps;
    }
  }
  EXPECT_EQ(steps, 63230);
  EXPECT_EQ(successes, 390);
  EXPECT_EQ(failures, 8);
}

}  // namespace
}  // namespace skillgrid::envs
