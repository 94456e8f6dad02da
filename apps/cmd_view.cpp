// `skillgrid view` (the SFML window) and `skillgrid render` (headless exports: an episode per
// task as a GIF, the routing heatmap and the task hierarchy as PNGs). Both read a run directory
// (config.json, skills.json, checkpoints), or play levels directly.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"

#ifdef SKILLGRID_HAVE_VIZ
#include "envs/level.h"
#include "envs/state_io.h"
#include "viz/cluster.h"
#include "viz/controller.h"
#include "viz/dendrogram.h"
#include "viz/episode_panel.h"
#include "viz/heatmap.h"
#include "viz/plots.h"
#include "viz/policy.h"
#include "viz/routing.h"
#include "viz/run_dir.h"
#include "viz/session.h"
#endif
#ifdef SKILLGRID_HAVE_VIEWER
#include "viz/viewer.h"
#endif

namespace skillgrid::apps {
namespace {

// Options shared by view and render: where episodes, routing and the policy come from.
struct SourceOptions {
  std::string run;                  // run directory
  std::string checkpoint;           // checkpoint file (its run directory is read too)
  std::vector<std::string> levels;  // level ids (comma lists allowed)
  std::string states;               // fixed start states: a state JSON or a trace JSONL file
  std::string skills;               // skills.json to show instead of the run's
  std::string actor;                // policy | bot | random | none; "" = policy if available
  uint64_t seed = 1;                // episode seeds start here
  bool sample = false;              // sampled actions instead of argmax
  std::string distance = "cosine";  // dendrogram row distance
  std::string linkage = "average";  // dendrogram linkage
};

void AddSourceOptions(CLI::App* cmd, SourceOptions* o) {
  cmd->add_option("--run", o->run, "run directory (config.json, skills.json, checkpoints)");
  cmd->add_option("--checkpoint", o->checkpoint, "checkpoint file to load the policy from");
  cmd->add_option("--level", o->levels, "level id(s) to play, e.g. BabyAI-GoToLocal-v0")
      ->delimiter(',');
  cmd->add_option("--states", o->states,
                  "start episodes from these states: a state JSON or a conformance trace JSONL");
  cmd->add_option("--skills", o->skills, "routing snapshots to show (default: the run's skills.json)");
  cmd->add_option("--actor", o->actor,
                  "who acts: policy (the checkpoint), bot (expert bot), random, none")
      ->check(CLI::IsMember({"policy", "bot", "random", "none"}));
  cmd->add_option("--seed", o->seed, "seed of the first episode")->capture_default_str();
  cmd->add_flag("--sample", o->sample, "sample actions from the policy instead of argmax");
  cmd->add_option("--distance", o->distance, "task distance for the hierarchy")
      ->check(CLI::IsMember({"cosine", "euclidean"}))
      ->capture_default_str();
  cmd->add_option("--linkage", o->linkage, "linkage of the hierarchy")
      ->check(CLI::IsMember({"average", "single", "complete"}))
      ->capture_default_str();
}

#ifdef SKILLGRID_HAVE_VIZ

// Everything resolved from SourceOptions.
struct Setup {
  viz::RunInfo run;
  bool have_run = false;
  viz::SessionConfig session;
  std::unique_ptr<viz::Actor> actor;
  std::string checkpoint;
  std::string skills_path;
  std::string routing_note;  // why there is no routing, if there is none
  std::string actor_note;    // why nobody acts, if nobody does
};

// Whether episodes need someone to act.
enum class ActorNeed {
  kNone,      // no episodes (heatmap/hierarchy exports): the policy is not loaded
  kRequired,  // episodes must be driven (GIF export): fail when nobody can act
  kOptional,  // the viewer: without a policy, manual play (an explicit --actor must work)
};

// Throws std::runtime_error with a one-line message on bad input.
Setup Resolve(const SourceOptions& o, ActorNeed need) {
  namespace fs = std::filesystem;
  Setup s;
  std::string run_dir = o.run;
  if (run_dir.empty() && !o.checkpoint.empty()) {
    fs::path dir = fs::path(o.checkpoint).parent_path();
    if (dir.filename() == "checkpoints") dir = dir.parent_path();
    if (fs::exists(dir / "config.json")) run_dir = dir.empty() ? "." : dir.string();
  }
  if (!o.checkpoint.empty() && !fs::exists(o.checkpoint)) {
    throw std::runtime_error("checkpoint '" + o.checkpoint + "' does not exist");
  }
  if (!run_dir.empty()) {
    s.run = viz::ReadRunDir(run_dir);
    s.have_run = true;
  }
  // Levels: --level, else the run's, else those of the states file.
  std::vector<viz::StartState> starts;
  if (!o.states.empty()) starts = viz::LoadStartStates(o.states);
  std::vector<std::string> levels = o.levels;
  if (levels.empty() && s.have_run) levels = s.run.levels;
  if (levels.empty()) {
    for (const auto& st : starts) {
      const std::string l = st.level.empty() ? "custom" : st.level;
      if (std::find(levels.begin(), levels.end(), l) == levels.end()) levels.push_back(l);
    }
  }
  if (levels.empty()) {
    throw std::runtime_error(s.have_run ? "run '" + run_dir + "' names no levels in config.json; pass --level"
                                        : "nothing to show: pass --run DIR, --checkpoint FILE or --level L");
  }
  for (const auto& l : levels) {
    const bool from_states = std::any_of(starts.begin(), starts.end(), [&](const viz::StartState& st) {
      return (st.level.empty() ? "custom" : st.level) == l;
    });
    if (!from_states) envs::GetLevelConfig(l);  // throws InputError naming close ids
  }
  s.session.levels = levels;
  s.session.seed = o.seed;
  // Task ids follow the run's level order (the policy's task input and the routing rows).
  if (s.have_run && !s.run.levels.empty()) {
    for (const auto& l : levels) {
      const auto it = std::find(s.run.levels.begin(), s.run.levels.end(), l);
      if (it == s.run.levels.end()) {
        throw std::runtime_error("level " + l + " is not one of the run's levels");
      }
      s.session.tasks.push_back(static_cast<int>(it - s.run.levels.begin()));
    }
  }
  if (!starts.empty()) {
    s.session.fixed_starts.resize(levels.size());
    for (size_t i = 0; i < levels.size(); ++i) {
      for (const auto& st : starts) {
        if ((st.level.empty() ? "custom" : st.level) == levels[i] ||
            (levels.size() == 1 && st.level.empty())) {
          s.session.fixed_starts[i].push_back(st.state);
        }
      }
    }
  }
  // Routing.
  if (!o.skills.empty()) {
    s.skills_path = o.skills;
  } else if (s.have_run && s.run.no_routing()) {
    s.routing_note = "this run has no skills (router none): no routing to show";
  } else if (s.have_run && !s.run.skills_path.empty()) {
    s.skills_path = s.run.skills_path;
  } else if (s.have_run) {
    s.routing_note = "no skills.json in " + run_dir + " yet: no routing to show";
  } else {
    s.routing_note = "no run: no routing to show (pass --run DIR or --skills FILE)";
  }
  // Actor.
  s.checkpoint = !o.checkpoint.empty() ? o.checkpoint : (s.have_run ? viz::LatestCheckpoint(s.run) : "");
  if (need == ActorNeed::kNone) return s;
  const std::string actor = o.actor.empty() ? (s.checkpoint.empty() ? "" : "policy") : o.actor;
  if (actor == "policy") {
    if (s.checkpoint.empty()) {
      throw std::runtime_error(
          s.have_run ? "run '" + run_dir + "' has no checkpoint yet; pass --actor bot or --actor random"
                     : "--actor policy needs --run DIR or --checkpoint FILE");
    }
    std::string why;
    s.actor = viz::LoadPolicyActor(s.run, s.checkpoint, &why);
    if (!s.actor) {
      if (need == ActorNeed::kRequired || !o.actor.empty()) {
        throw std::runtime_error(why + (need == ActorNeed::kRequired ? "; or pass --actor bot or --actor random" : ""));
      }
      s.actor_note = why + "; manual play (arrows, p, d, t)";
    }
  } else if (actor == "bot") {
    s.actor = viz::MakeBotActor();
  } else if (actor == "random") {
    s.actor = viz::MakeRandomActor(o.seed);
  } else if (need == ActorNeed::kRequired) {
    throw std::runtime_error(
        std::string(s.have_run ? "run has no checkpoint" : "no policy") +
        " to drive the episodes; pass --actor bot or --actor random (or --checkpoint FILE)");
  } else if (actor == "none") {
    s.actor_note = "no actor: manual play (arrows, p, d, t)";
  } else {
    s.actor_note = s.have_run ? "no checkpoint yet: manual play (arrows, p, d, t)"
                              : "no policy: manual play (arrows, p, d, t)";
  }
  return s;
}

viz::ClusterOptions ClusterOpts(const SourceOptions& o) {
  viz::ClusterOptions c;
  viz::ParseRowDistance(o.distance, &c.distance);
  viz::ParseLinkage(o.linkage, &c.linkage);
  return c;
}

#endif  // SKILLGRID_HAVE_VIZ

// ---------------------------------------------------------------------------------------------
// render

struct RenderOptions {
  SourceOptions src;
  std::string gif;         // --out
  std::string heatmap;     // --heatmap
  std::string hierarchy;   // --hierarchy
  std::string layer;       // layer to draw ("" = first for the heatmap, all for the hierarchy)
  int head = 0;            // head to draw
  int tile_px = 16;        // grid tile size in the GIF
  int delay_cs = 12;       // GIF frame delay
  int max_steps = 0;       // cap on steps per episode (0 = the level's max_steps)
  int episodes = 1;        // episodes per task
};

#ifdef SKILLGRID_HAVE_VIZ

// The matrices selected by --layer/--head ("all": every layer and head).
std::vector<const viz::RoutingMatrix*> Select(const viz::RoutingSnapshot& snap,
                                              const std::string& layer, int head, bool all_default) {
  std::vector<const viz::RoutingMatrix*> out;
  if (layer == "all" || (layer.empty() && all_default)) {
    for (const auto& m : snap.matrices) out.push_back(&m);
  } else if (layer.empty()) {
    const int i = snap.Find(snap.matrices[0].layer, head);
    if (i < 0) throw std::runtime_error("layer '" + snap.matrices[0].layer + "' has no head " + std::to_string(head));
    out.push_back(&snap.matrices[i]);
  } else {
    const int i = snap.Find(layer, head);
    if (i < 0) {
      std::string names;
      for (const auto& n : snap.LayerNames()) names += (names.empty() ? "" : ", ") + n;
      throw std::runtime_error("no layer '" + layer + "' head " + std::to_string(head) +
                               " in the routing snapshot (layers: " + names + ")");
    }
    out.push_back(&snap.matrices[i]);
  }
  return out;
}

void WriteHeatmap(const viz::RoutingSnapshot& snap, const RenderOptions& o) {
  const auto sel = Select(snap, o.layer, o.head, false);
  const envs::RgbImage out = viz::RenderRoutingStack(sel, snap.frames);
  envs::WritePng(o.heatmap, out);
  std::cout << "wrote " << o.heatmap << " (" << out.width << "x" << out.height << ", "
            << sel.size() << " heatmap" << (sel.size() == 1 ? "" : "s") << ")\n";
}

void WriteHierarchy(const viz::RoutingSnapshot& snap, const RenderOptions& o) {
  const auto sel = Select(snap, o.layer, o.head, true);
  // Each task's allocation: its rows of the selected matrices, concatenated.
  viz::RoutingMatrix joined;
  joined.task_names = sel[0]->task_names;
  const int T = joined.num_tasks();
  for (const auto* m : sel) {
    if (m->num_tasks() != T) throw std::runtime_error("layers disagree on the number of tasks");
    joined.num_skills += m->num_skills;
  }
  joined.weights.resize(static_cast<size_t>(T) * joined.num_skills);
  int col = 0;
  for (const auto* m : sel) {
    for (int t = 0; t < T; ++t) {
      for (int s = 0; s < m->num_skills; ++s) joined.weights[t * joined.num_skills + col + s] = m->at(t, s);
    }
    col += m->num_skills;
  }
  const viz::Clustering c = viz::ClusterTasks(joined, ClusterOpts(o.src));
  viz::DendrogramStyle ds;
  ds.title = sel.size() == 1 ? "tasks by skill allocation: " + sel[0]->layer + " head " +
                                   std::to_string(sel[0]->head + 1)
                             : "tasks by skill allocation: all " + std::to_string(sel.size()) +
                                   " layer heads, " + o.src.distance + " " + o.src.linkage;
  ds.tree_width = 240;
  const envs::RgbImage img = viz::RenderDendrogram(c, joined.task_names, ds);
  envs::WritePng(o.hierarchy, img);
  std::cout << "wrote " << o.hierarchy << " (" << img.width << "x" << img.height << ", "
            << T << " tasks)\n";
}

void WriteGif(viz::Session& session, const RenderOptions& o) {
  if (!session.actor()) throw std::runtime_error("nobody acts in the episodes; pass --actor bot or --actor random");
  // Panel size: the largest grid at the tile size, at least wide enough for text.
  viz::PanelStyle ps;
  ps.tile_px = o.tile_px;
  int w = 260, h = 0;
  for (int i = 0; i < session.num_slots(); ++i) {
    const auto& world = session.slot(i).episode.world();
    w = std::max(w, world.grid.width() * o.tile_px + 8);
    h = std::max(h, world.grid.height() * o.tile_px);
  }
  ps.width = w;
  ps.height = viz::PanelHeaderHeight(ps) + h + viz::PanelFooterHeight(ps);
  envs::GifWriter gif(o.gif);
  envs::RgbImage frame, scratch;
  auto add = [&](int i, int delay) {
    const viz::TaskSlot& s = session.slot(i);
    viz::Clear(&frame, ps.width, ps.height, viz::palette::kBackground);
    viz::PanelText text;
    text.title = viz::ShortTaskName(s.level) + "  " + (session.actor() ? session.actor()->name() : "");
    text.mission = s.episode.world().mission;
    text.status = viz::SlotStatus(s);
    viz::DrawPanel(s.episode.world(), text, ps, &frame, 0, 0, &scratch);
    gif.AddFrame(frame, delay);
  };
  for (int i = 0; i < session.num_slots(); ++i) {
    for (int e = 0; e < o.episodes; ++e) {
      if (e > 0) session.Restart(i);
      int steps = 0;
      bool last = false;
      add(i, o.delay_cs);
      while (!session.slot(i).done && (o.max_steps <= 0 || steps < o.max_steps)) {
        session.Step(i, o.src.sample);
        ++steps;
        last = session.slot(i).done || (o.max_steps > 0 && steps >= o.max_steps);
        add(i, last ? std::max(o.delay_cs, 100) : o.delay_cs);
      }
    }
  }
  const int frames = gif.frame_count();
  gif.Close();
  std::cout << "wrote " << o.gif << " (" << ps.width << "x" << ps.height << ", " << frames
            << " frames, " << session.num_slots() << " task" << (session.num_slots() == 1 ? "" : "s")
            << ")\n";
}

int RunRender(const RenderOptions& o) {
  if (o.gif.empty() && o.heatmap.empty() && o.hierarchy.empty()) {
    std::cerr << "skillgrid render: error: nothing to write; pass --out FILE.gif, --heatmap FILE.png "
                 "and/or --hierarchy FILE.png\n";
    return 2;
  }
  try {
    Setup s = Resolve(o.src, o.gif.empty() ? ActorNeed::kNone : ActorNeed::kRequired);
    if (!o.heatmap.empty() || !o.hierarchy.empty()) {
      if (s.skills_path.empty()) throw std::runtime_error(s.routing_note);
      const viz::RoutingSnapshot snap = viz::LoadLatestRoutingSnapshot(s.skills_path, s.session.levels);
      if (!o.heatmap.empty()) WriteHeatmap(snap, o);
      if (!o.hierarchy.empty()) WriteHierarchy(snap, o);
    }
    if (!o.gif.empty()) {
      viz::Session session(s.session, std::move(s.actor));
      WriteGif(session, o);
    }
  } catch (const std::exception& e) {
    std::cerr << "skillgrid render: error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

#else

int RunRender(const RenderOptions&) {
  std::cerr << "skillgrid render: error: this build has no viz/ (Eigen 3 was not found at build time)\n";
  return 2;
}

#endif

// ---------------------------------------------------------------------------------------------
// view

struct ViewOptions {
  SourceOptions src;
  bool follow = false;       // reload skills.json and checkpoints as they appear
  int width = 1280;          // window size
  int height = 800;
  double speed = 4.0;        // steps per second
  bool paused = false;       // start paused
  bool manual = false;       // start in manual play
  int fps = 30;              // frame-rate limit
  int frames = 0;            // close after N frames
  std::string screenshot;    // PNG of the window after the last frame
};

int RunView(const ViewOptions& o) {
#if defined(SKILLGRID_HAVE_VIZ) && defined(SKILLGRID_HAVE_VIEWER)
  std::string why;
  if (!viz::DisplayAvailable(&why)) {
    std::cerr << "skillgrid view: error: " << why << "\n";
    return 1;
  }
  if (!o.screenshot.empty() && o.frames <= 0) {
    std::cerr << "skillgrid view: error: --screenshot needs --frames N\n";
    return 2;
  }
  try {
    Setup s = Resolve(o.src, ActorNeed::kOptional);
    viz::ControllerConfig cc;
    cc.width = o.width;
    cc.height = o.height;
    cc.steps_per_second = o.speed;
    cc.paused = o.paused;
    cc.manual = o.manual || !s.actor;
    cc.sample = o.src.sample;
    cc.skills_path = s.skills_path;
    cc.default_tasks = s.session.levels;
    cc.routing_note = s.routing_note;
    cc.follow = o.follow;
    cc.run_dir = s.have_run ? s.run.dir : "";
    cc.checkpoint = s.checkpoint;
    if (s.have_run) {
      const viz::RunInfo run = s.run;
      cc.load_checkpoint = [run](const std::string& path, std::string* why) {
        return viz::LoadPolicyActor(run, path, why);
      };
      if (o.follow && cc.skills_path.empty() && !run.no_routing()) {
        cc.routing_note += " (following: waiting for skills.json)";
      }
    }
    const std::string actor_note = s.actor_note;
    cc.initial_message = actor_note;
    viz::ViewerController controller(std::make_unique<viz::Session>(s.session, std::move(s.actor)), cc);
    viz::ViewerOptions vo;
    vo.fps = o.fps;
    vo.frames = o.frames;
    vo.screenshot = o.screenshot;
    vo.fixed_timestep = o.frames > 0;
    if (!actor_note.empty()) std::cout << "skillgrid view: " << actor_note << "\n";
    if (!s.routing_note.empty()) std::cout << "skillgrid view: " << s.routing_note << "\n";
    const int rc = viz::RunViewer(controller, vo);
    if (rc == 0 && !o.screenshot.empty()) std::cout << "wrote " << o.screenshot << "\n";
    return rc;
  } catch (const std::exception& e) {
    std::cerr << "skillgrid view: error: " << e.what() << "\n";
    return 2;
  }
#else
  std::cerr << "skillgrid view: error: this build has no viewer window (SFML 2.5 was not found or "
               "SKILLGRID_WITH_VIEWER is off); 'skillgrid render' writes GIF/PNG exports\n";
  return 1;
#endif
}

}  // namespace

void AddRenderCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<RenderOptions>();
  CLI::App* cmd = app.add_subcommand(
      "render", "Headless exports: an episode per task (GIF), routing heatmap and task hierarchy (PNG)");
  AddSourceOptions(cmd, &o->src);
  cmd->add_option("--out", o->gif, "GIF of an episode per task");
  cmd->add_option("--heatmap", o->heatmap, "PNG of the task x skill routing heatmap");
  cmd->add_option("--hierarchy", o->hierarchy, "PNG of the task dendrogram");
  cmd->add_option("--layer", o->layer,
                  "routed layer to draw, or 'all' (default: the first for --heatmap, all for "
                  "--hierarchy)");
  cmd->add_option("--head", o->head, "head of the layer (from 0)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--tile", o->tile_px, "pixels per cell in the GIF")
      ->capture_default_str()
      ->check(CLI::Range(4, 64));
  cmd->add_option("--delay", o->delay_cs, "GIF frame delay in 1/100 s")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--max-steps", o->max_steps, "cap on steps per episode (0: the level's limit)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--episodes", o->episodes, "episodes per task")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  cmd->callback([o, exit_code] { *exit_code = RunRender(*o); });
}

void AddViewCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ViewOptions>();
  CLI::App* cmd = app.add_subcommand(
      "view", "Window: live episodes per task, routing heatmap per layer/head, task hierarchy");
  AddSourceOptions(cmd, &o->src);
  cmd->add_flag("--follow", o->follow, "reload skills.json and checkpoints as training writes them");
  cmd->add_option("--width", o->width, "window width")->capture_default_str()->check(CLI::Range(640, 4096));
  cmd->add_option("--height", o->height, "window height")->capture_default_str()->check(CLI::Range(400, 4096));
  cmd->add_option("--speed", o->speed, "steps per second")->capture_default_str()->check(CLI::Range(0.25, 256.0));
  cmd->add_flag("--paused", o->paused, "start paused");
  cmd->add_flag("--manual", o->manual, "start in manual play (arrows, p pickup, d drop, t toggle)");
  cmd->add_option("--fps", o->fps, "frame-rate limit")->capture_default_str()->check(CLI::Range(1, 240));
  cmd->add_option("--frames", o->frames, "close after N frames (with --screenshot: capture first)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--screenshot", o->screenshot, "PNG of the window after the last frame");
  cmd->callback([o, exit_code] { *exit_code = RunView(*o); });
}

}  // namespace skillgrid::apps
