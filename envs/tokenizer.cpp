#include "envs/tokenizer.h"

#include "envs/state_io.h"

namespace skillgrid::envs {

namespace {
// Fixed order: ids are part of the checkpoint format. Append, never reorder.
const std::vector<std::string> kWords = {
    "<pad>", "go",    "to",    "pick",   "up",     "open",  "put",    "next", "and",
    "then",  "after", "you",   "the",    "a",      "red",   "green",  "blue", "purple",
    "yellow", "grey", "box",   "ball",   "key",    "door",  "object", "in",   "front",
    "of",    "behind", "on",   "your",   "left",   "right"};
}  // namespace

int MissionTokenizer::VocabSize() { return static_cast<int>(kWords.size()); }

const std::vector<std::string>& MissionTokenizer::Words() { return kWords; }

int MissionTokenizer::WordId(std::string_view word) {
  for (size_t i = 1; i < kWords.size(); ++i) {
    if (kWords[i] == word) return static_cast<int>(i);
  }
  return -1;
}

int MissionTokenizer::Encode(std::string_view mission, int32_t* out, int max_tokens) {
  int n = 0;
  size_t i = 0;
  while (i < mission.size()) {
    const char c = mission[i];
    if (c == ' ' || c == ',' || c == '.') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < mission.size() && mission[j] != ' ' && mission[j] != ',' && mission[j] != '.') ++j;
    const std::string_view word = mission.substr(i, j - i);
    const int id = WordId(word);
    if (id < 0) {
      throw InputError("mission \"" + std::string(mission) + "\": unknown word '" +
                       std::string(word) + "'");
    }
    if (n >= max_tokens) {
      throw InputError("mission \"" + std::string(mission) + "\" has more than " +
                       std::to_string(max_tokens) + " words");
    }
    out[n++] = id;
    i = j;
  }
  for (int k = n; k < max_tokens; ++k) out[k] = 0;
  return n;
}

std::vector<int32_t> MissionTokenizer::Encode(std::string_view mission) {
  std::vector<int32_t> ids(mission.size() / 2 + 1);
  const int n = Encode(mission, ids.data(), static_cast<int>(ids.size()));
  ids.resize(n);
  return ids;
}

std::string MissionTokenizer::Decode(const int32_t* ids, int count) {
  std::string s;
  for (int k = 0; k < count; ++k) {
    if (ids[k] <= 0 || ids[k] >= VocabSize()) continue;
    if (!s.empty()) s += ' ';
    s += kWords[ids[k]];
  }
  return s;
}

}  // namespace skillgrid::envs
