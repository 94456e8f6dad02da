// Mission tokenizer: a fixed vocabulary derived from the BabyAI grammar, with stable ids.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace skillgrid::envs {

/// Maps mission words to ids. Id 0 is padding; the grammar's 32 words have ids 1..32 in a
/// fixed order that never changes (checkpoints store token ids). Punctuation (the comma of
/// "A, then B") is dropped, as BabyAI's preprocessing does.
class MissionTokenizer {
 public:
  /// Number of ids including padding (33).
  static int VocabSize();
  /// The words in id order; Words()[0] is "<pad>".
  static const std::vector<std::string>& Words();
  /// Id of a word, or -1 if it is not in the vocabulary.
  static int WordId(std::string_view word);

  /// Tokenizes `mission` into `out` (up to `max_tokens` ids, padded with 0) and returns the
  /// number of tokens. Throws InputError for an unknown word (naming it) or a mission longer
  /// than max_tokens.
  static int Encode(std::string_view mission, int32_t* out, int max_tokens);
  /// Convenience: the ids as a vector, unpadded.
  static std::vector<int32_t> Encode(std::string_view mission);
  /// Words for ids (padding skipped), joined by spaces.
  static std::string Decode(const int32_t* ids, int count);
};

}  // namespace skillgrid::envs
