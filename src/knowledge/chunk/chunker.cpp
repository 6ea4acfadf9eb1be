// Structure-following chunking (see chunker.hpp). Two passes: the blocks are cut into pieces
// that each fit (whole blocks, or sentences, lines or word runs of a block too large), then
// pieces are packed greedily into chunks, closing one at every heading, every page, and
// whenever the next piece would not fit.
#include "knowledge/chunk/chunker.hpp"

#include <algorithm>

#include "knowledge/chunk/tokens.hpp"

namespace parley::knowledge {

namespace {

struct Piece {
  size_t begin = 0;
  size_t end = 0;
  int64_t tokens = 0;
  const Block* block = nullptr;
};

// The same whitespace as count_tokens: what lies between two pieces is free, so a chunk's
// tokens are the sum of its pieces'.
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

size_t skip_spaces(std::string_view text, size_t i, size_t end) {
  while (i < end && is_space(text[i])) ++i;
  return i;
}

bool continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Cuts a run without whitespace that is too large on its own ([begin, end)) into the longest
// pieces that fit, each ending on a UTF-8 character boundary. Token counts only grow as a run
// grows, so the longest fitting prefix is found by bisection.
void split_run(std::string_view text, size_t begin, size_t end, int64_t max_tokens,
               const Block* block, std::vector<Piece>& out) {
  size_t from = begin;
  while (from < end) {
    size_t lo = from + 1;  // one character is at most one token, so it always fits
    size_t hi = end;
    while (lo < hi) {
      const size_t mid = lo + (hi - lo + 1) / 2;
      if (count_tokens(text.substr(from, mid - from)) <= max_tokens) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    size_t cut = lo;
    while (cut > from + 1 && cut < end && continuation_byte(text[cut])) --cut;
    while (cut < end && continuation_byte(text[cut])) ++cut;  // never split a character
    out.push_back({from, cut, count_tokens(text.substr(from, cut - from)), block});
    from = cut;
  }
}

// Cuts [begin, end) — one sentence or line too large on its own — at whitespace into runs of
// at most max_tokens; a run without whitespace that is still too large is cut by split_run.
void split_words(std::string_view text, size_t begin, size_t end, int64_t max_tokens,
                 const Block* block, std::vector<Piece>& out) {
  const auto flush = [&](size_t from, size_t to) {
    if (to > from) out.push_back({from, to, count_tokens(text.substr(from, to - from)), block});
  };
  size_t start = begin;
  size_t last_fit = begin;  // end of the last word that fits
  size_t i = begin;
  while (i < end) {
    size_t word_end = i;
    while (word_end < end && !is_space(text[word_end])) ++word_end;
    if (count_tokens(text.substr(i, word_end - i)) > max_tokens) {
      flush(start, last_fit);
      split_run(text, i, word_end, max_tokens, block, out);
      start = last_fit = i = skip_spaces(text, word_end, end);
      continue;
    }
    if (count_tokens(text.substr(start, word_end - start)) > max_tokens) {
      flush(start, last_fit);
      start = i;
    }
    last_fit = word_end;
    i = skip_spaces(text, word_end, end);
  }
  flush(start, last_fit);
}

// The end of the sentence or line that starts at `i` (exclusive), within [i, end).
size_t unit_end(std::string_view text, size_t i, size_t end, bool lines) {
  for (; i < end; ++i) {
    const char c = text[i];
    if (c == '\n') return i;
    if (lines) continue;
    if (c == '.' || c == '!' || c == '?') {
      size_t j = i + 1;
      while (j < end && (text[j] == '"' || text[j] == '\'' || text[j] == ')')) ++j;
      if (j == end || is_space(text[j])) return j;
    }
  }
  return end;
}

void split_block(std::string_view text, const Block& block, int64_t max_tokens,
                 std::vector<Piece>& out) {
  const size_t begin = block.offset;
  const size_t end = block.offset + block.length;
  const int64_t tokens = count_tokens(text.substr(begin, block.length));
  if (tokens <= max_tokens) {
    out.push_back({begin, end, tokens, &block});
    return;
  }
  const bool lines = block.kind == BlockKind::kCode || block.kind == BlockKind::kTableRow;
  size_t i = begin;
  while (i < end) {
    const size_t stop = unit_end(text, i, end, lines);
    size_t trimmed = stop;
    while (trimmed > i && is_space(text[trimmed - 1])) --trimmed;
    if (trimmed > i) {
      const int64_t unit_tokens = count_tokens(text.substr(i, trimmed - i));
      if (unit_tokens <= max_tokens) {
        out.push_back({i, trimmed, unit_tokens, &block});
      } else {
        split_words(text, i, trimmed, max_tokens, &block, out);
      }
    }
    i = skip_spaces(text, stop, end);
  }
}

}  // namespace

Result<void> validate(const ChunkOptions& options) {
  if (options.max_tokens < 32 || options.max_tokens > 8192) {
    return Error::invalid_field("chunking.max_tokens", "must be between 32 and 8192");
  }
  if (options.overlap_tokens < 0 || options.overlap_tokens > options.max_tokens / 2) {
    return Error::invalid_field("chunking.overlap_tokens",
                                "must be between 0 and half of max_tokens");
  }
  return success();
}

std::vector<Chunk> chunk_document(const Extracted& document, const ChunkOptions& options) {
  const std::string_view text = document.text;
  const int64_t max_tokens = std::max<int64_t>(1, options.max_tokens);
  std::vector<Piece> pieces;
  pieces.reserve(document.blocks.size());
  for (const Block& block : document.blocks) {
    if (block.offset + block.length > text.size()) continue;  // not from this document
    split_block(text, block, max_tokens, pieces);
  }

  std::vector<Chunk> chunks;
  size_t first = 0;    // the current chunk's first piece
  int64_t tokens = 0;  // its pieces' tokens
  bool only_headings = true;
  const auto emit = [&](size_t last) {  // pieces [first, last]
    Chunk chunk;
    chunk.start = pieces[first].begin;
    chunk.end = pieces[last].end;
    chunk.tokens = count_tokens(text.substr(chunk.start, chunk.end - chunk.start));
    chunk.page = pieces[first].block->page;
    chunk.page_end = pieces[last].block->page;
    // The section of its first text: a chunk that opens with "Configure" and "Timeouts"
    // headings is cited as "Configure > Timeouts".
    chunk.section = pieces[first].block->section;
    for (size_t i = first; i <= last; ++i) {
      if (pieces[i].block->kind != BlockKind::kHeading) {
        chunk.section = pieces[i].block->section;
        break;
      }
    }
    chunks.push_back(std::move(chunk));
  };
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Piece& piece = pieces[i];
    const bool heading = piece.block->kind == BlockKind::kHeading;
    if (i > first) {
      const Piece& previous = pieces[i - 1];
      const bool structural =
          (heading && !only_headings) || piece.block->page != previous.block->page;
      const bool full = tokens + piece.tokens > max_tokens;
      if (structural || full) {
        emit(i - 1);
        size_t next_first = i;
        int64_t carried = 0;
        if (!structural) {
          // Repeat the last pieces, as many as fit the overlap and leave room for this one.
          while (next_first > first + 1) {
            const int64_t t = pieces[next_first - 1].tokens;
            if (carried + t > options.overlap_tokens || carried + t + piece.tokens > max_tokens)
              break;
            carried += t;
            --next_first;
          }
        }
        first = next_first;
        tokens = carried;
        only_headings = true;
        for (size_t k = first; k < i; ++k) {
          if (pieces[k].block->kind != BlockKind::kHeading) only_headings = false;
        }
      }
    }
    tokens += piece.tokens;
    if (!heading) only_headings = false;
  }
  if (first < pieces.size()) emit(pieces.size() - 1);
  return chunks;
}

}  // namespace parley::knowledge
