// The SFML window: the dashboard image uploaded to a texture each frame.
#include "viz/viewer.h"

#include <SFML/Graphics.hpp>
#include <cstdlib>
#include <iostream>

#include "envs/image_io.h"

namespace skillgrid::viz {
namespace {

// Keys to commands; text-entered characters cover layouts where [ ] { } + - need modifiers.
std::optional<Command> KeyCommand(const sf::Event::KeyEvent& key) {
  using K = sf::Keyboard;
  switch (key.code) {
    case K::Space: return Command::kPause;
    case K::N: return Command::kSingleStep;
    case K::Add: return Command::kFaster;
    case K::Subtract: return Command::kSlower;
    case K::Tab: return key.shift ? Command::kPrevTask : Command::kNextTask;
    case K::S: return Command::kToggleSample;
    case K::M: return Command::kToggleManual;
    case K::R: return Command::kRestart;
    case K::Left: return Command::kLeft;
    case K::Right: return Command::kRight;
    case K::Up: return Command::kForward;
    case K::P: return Command::kPickup;
    case K::D: return Command::kDrop;
    case K::T: return Command::kToggle;
    case K::Enter: return Command::kDone;
    case K::PageDown: return Command::kNextLayer;
    case K::PageUp: return Command::kPrevLayer;
    default: return std::nullopt;
  }
}

std::optional<Command> TextCommand(uint32_t unicode) {
  switch (unicode) {
    case '+': case '=': return Command::kFaster;
    case '-': case '_': return Command::kSlower;
    case ']': return Command::kNextLayer;
    case '[': return Command::kPrevLayer;
    case '}': return Command::kNextHead;
    case '{': return Command::kPrevHead;
    default: return std::nullopt;
  }
}

void ToRgba(const envs::RgbImage& rgb, std::vector<sf::Uint8>* rgba) {
  const size_t n = static_cast<size_t>(rgb.width) * rgb.height;
  rgba->resize(n * 4);
  for (size_t i = 0; i < n; ++i) {
    (*rgba)[4 * i] = rgb.pixels[3 * i];
    (*rgba)[4 * i + 1] = rgb.pixels[3 * i + 1];
    (*rgba)[4 * i + 2] = rgb.pixels[3 * i + 2];
    (*rgba)[4 * i + 3] = 255;
  }
}

}  // namespace

bool DisplayAvailable(std::string* why) {
  const char* x = std::getenv("DISPLAY");
  const char* wl = std::getenv("WAYLAND_DISPLAY");
  if ((x && *x) || (wl && *wl)) return true;
  if (why) *why = "no display (DISPLAY is not set); use 'skillgrid render' for headless exports";
  return false;
}

int RunViewer(ViewerController& controller, const ViewerOptions& options) {
  const int W = controller.state().width, H = controller.state().height;
  sf::RenderWindow window(sf::VideoMode(W, H), options.title, sf::Style::Titlebar | sf::Style::Close);
  if (!window.isOpen()) {
    std::cerr << "skillgrid view: error: cannot open a " << W << "x" << H << " window\n";
    return 1;
  }
  window.setFramerateLimit(options.fps > 0 ? options.fps : 30);
  window.setKeyRepeatEnabled(true);
  sf::Texture texture;
  if (!texture.create(W, H)) {
    std::cerr << "skillgrid view: error: cannot create a " << W << "x" << H << " texture\n";
    return 1;
  }
  sf::Sprite sprite(texture);
  envs::RgbImage frame;
  std::vector<sf::Uint8> rgba;
  sf::Clock clock;
  int shown = 0;
  DashboardLayout layout;
  while (window.isOpen()) {
    sf::Event event;
    while (window.pollEvent(event)) {
      if (event.type == sf::Event::Closed) {
        window.close();
      } else if (event.type == sf::Event::KeyPressed) {
        if (event.key.code == sf::Keyboard::Escape || event.key.code == sf::Keyboard::Q) {
          window.close();
        } else if (auto c = KeyCommand(event.key)) {
          controller.Handle(*c);
        }
      } else if (event.type == sf::Event::TextEntered) {
        if (auto c = TextCommand(event.text.unicode)) controller.Handle(*c);
      } else if (event.type == sf::Event::MouseButtonPressed) {
        for (size_t i = 0; i < layout.panels.size(); ++i) {
          if (layout.panels[i].panel.Contains(event.mouseButton.x, event.mouseButton.y)) {
            controller.Select(static_cast<int>(i));
          }
        }
      }
    }
    if (!window.isOpen()) break;
    const double dt = options.fixed_timestep ? 1.0 / std::max(1, options.fps)
                                             : clock.restart().asSeconds();
    controller.Tick(dt);
    layout = controller.Draw(&frame);
    ToRgba(frame, &rgba);
    texture.update(rgba.data());
    window.clear();
    window.draw(sprite);
    window.display();
    ++shown;
    if (options.frames > 0 && shown >= options.frames) {
      if (!options.screenshot.empty()) {
        // Capture what the window shows (the back buffer that was just displayed is redrawn
        // first so the capture does not depend on buffer-swap behaviour).
        window.clear();
        window.draw(sprite);
        sf::Texture capture;
        capture.create(W, H);
        capture.update(window);
        const sf::Image image = capture.copyToImage();
        envs::RgbImage out;
        out.Resize(W, H);
        const sf::Uint8* px = image.getPixelsPtr();
        for (int i = 0; i < W * H; ++i) {
          out.pixels[3 * i] = px[4 * i];
          out.pixels[3 * i + 1] = px[4 * i + 1];
          out.pixels[3 * i + 2] = px[4 * i + 2];
        }
        try {
          envs::WritePng(options.screenshot, out);
        } catch (const std::exception& e) {
          std::cerr << "skillgrid view: error: " << e.what() << "\n";
          return 1;
        }
        window.display();
      }
      window.close();
    }
  }
  return 0;
}

}  // namespace skillgrid::viz
