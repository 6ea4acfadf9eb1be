#include "summary/extractive.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "core/common_words.hpp"
#include "knowledge/extract/text_utils.hpp"

namespace parley::summary {
namespace {

constexpr size_t kMaxSentenceBytes = 240;
constexpr size_t kLongMessageBytes = 600;  // a message this long gives two sentences
constexpr double kPreviousWeight = 0.8;    // what an older summary said gives way first

bool word_byte(unsigned char c) { return std::isalnum(c) != 0 || c >= 0x80; }

// The words of a text, ASCII lowercased (other scripts as they are).
std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  for (unsigned char c : text) {
    if (word_byte(c)) {
      word.push_back(static_cast<char>(std::tolower(c)));
    } else if (!word.empty()) {
      out.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

bool content_word(const std::string& w) { return w.size() >= 3 && !is_common_word(w); }

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// At most `max` bytes, cut at a space (else at a character boundary), marked when cut.
std::string capped(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t cut = s.rfind(' ', max);
  if (cut == std::string_view::npos || cut < max / 2) {
    cut = max;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  }
  return std::string(trimmed(s.substr(0, cut))) + "\u2026";
}

std::vector<std::string> sentences_of(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  const auto close = [&](size_t end) {
    std::string_view s = trimmed(text.substr(start, end - start));
    const bool meaningful = std::any_of(
        s.begin(), s.end(), [](char c) { return word_byte(static_cast<unsigned char>(c)); });
    if (s.size() >= 3 && meaningful) out.push_back(capped(s, kMaxSentenceBytes));
    start = end;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      close(i);
      start = i + 1;
    } else if ((c == '.' || c == '!' || c == '?') &&
               (i + 1 == text.size() || std::isspace(static_cast<unsigned char>(text[i + 1])))) {
      close(i + 1);
    }
  }
  close(text.size());
  return out;
}

// What a summary line says, without who said it.
std::string spoken(std::string_view line) {
  for (std::string_view who : {std::string_view("- User: "), std::string_view("- Assistant: ")}) {
    if (line.substr(0, who.size()) == who) return std::string(line.substr(who.size()));
  }
  return std::string(line);
}

struct Line {
  std::string text;
  double score = 0;
  size_t order = 0;
};

class Scorer {
 public:
  void count(std::string_view text) {
    for (const auto& w : words_of(text)) {
      if (content_word(w)) ++frequency_[w];
    }
  }

  double score(std::string_view sentence) const {
    const auto words = words_of(sentence);
    std::set<std::string> seen;
    double weight = 0;
    for (const auto& w : words) {
      if (!content_word(w) || !seen.insert(w).second) continue;
      auto it = frequency_.find(w);
      weight += std::log1p(it == frequency_.end() ? 1.0 : static_cast<double>(it->second));
    }
    double score = weight / std::sqrt(std::max<double>(1.0, static_cast<double>(words.size())));
    // Numbers (dates, amounts, order ids) and names are what a summary is asked about later.
    if (std::any_of(sentence.begin(), sentence.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
      score += 1.0;
    }
    int names = 0;
    bool first = true;
    for (size_t i = 0; i < sentence.size(); ++i) {
      const bool starts = i == 0 || !word_byte(static_cast<unsigned char>(sentence[i - 1]));
      if (!starts || !word_byte(static_cast<unsigned char>(sentence[i]))) continue;
      if (!first && std::isupper(static_cast<unsigned char>(sentence[i])) != 0) ++names;
      first = false;
    }
    return score + 0.5 * std::min(names, 3);
  }

 private:
  std::map<std::string, int, std::less<>> frequency_;
};

}  // namespace

int64_t estimated_tokens(std::string_view text) {
  if (text.empty()) return 0;
  return static_cast<int64_t>(text.size() + 3) / 4;
}

std::string extractive_summary(std::string_view previous_text,
                               const std::vector<SaidMessage>& messages, int64_t max_tokens) {
  if (max_tokens <= 0) return std::string();
  const std::string previous = knowledge::repair_utf8(previous_text);
  // Words are counted once per distinct sentence: a line pasted ten times, or boilerplate
  // every reply repeats, does not become what the conversation is about.
  Scorer scorer;
  std::set<std::string> counted;
  const auto count = [&](const std::vector<std::string>& sentences) {
    for (const auto& sentence : sentences) {
      if (counted.insert(sentence).second) scorer.count(sentence);
    }
  };
  std::vector<std::tuple<const SaidMessage*, std::vector<std::string>, size_t>> said;
  for (const auto& m : messages) {
    if (m.role != "user" && m.role != "assistant") continue;
    const std::string content = knowledge::repair_utf8(m.content);
    said.emplace_back(&m, sentences_of(content), content.size());
    count(std::get<1>(said.back()));
  }
  count(sentences_of(previous));

  std::vector<Line> lines;
  size_t order = 0;
  size_t start = 0;
  while (start <= previous.size()) {
    size_t end = previous.find('\n', start);
    if (end == std::string::npos) end = previous.size();
    std::string_view line = trimmed(std::string_view(previous).substr(start, end - start));
    if (!line.empty()) {
      lines.push_back(
          {capped(line, kMaxSentenceBytes + 16), kPreviousWeight * scorer.score(line), order++});
    }
    start = end + 1;
  }
  // A sentence already said (in the summary or an earlier message) is not said again.
  std::set<std::string> said_before;
  for (const auto& l : lines) said_before.insert(spoken(l.text));
  for (const auto& entry : said) {
    const SaidMessage* message = std::get<0>(entry);
    const std::vector<std::string>& sentences = std::get<1>(entry);
    const size_t bytes = std::get<2>(entry);
    if (sentences.empty()) continue;
    std::vector<std::pair<double, size_t>> ranked;
    for (size_t i = 0; i < sentences.size(); ++i) {
      if (said_before.count(sentences[i]) != 0) continue;
      ranked.emplace_back(scorer.score(sentences[i]), i);
    }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<std::pair<double, size_t>> chosen;
    const size_t wanted = bytes > kLongMessageBytes ? 2 : 1;
    for (const auto& r : ranked) {
      if (chosen.size() == wanted) break;
      const bool repeated = std::any_of(chosen.begin(), chosen.end(), [&](const auto& c) {
        return sentences[c.second] == sentences[r.second];
      });
      if (!repeated) chosen.push_back(r);
    }
    std::sort(chosen.begin(), chosen.end(),
              [](const auto& a, const auto& b) { return a.second < b.second; });
    const std::string who = message->role == "user" ? "- User: " : "- Assistant: ";
    // What the user said is what the assistant is asked to remember.
    const double bonus = message->role == "user" ? 0.3 : 0.0;
    for (const auto& [score, index] : chosen) {
      lines.push_back({who + sentences[index], score + bonus, order++});
      said_before.insert(sentences[index]);
    }
  }

  const auto total = [](const std::vector<Line>& kept) {
    int64_t bytes = 0;
    for (const auto& l : kept) bytes += static_cast<int64_t>(l.text.size()) + 1;
    return bytes <= 1 ? int64_t{0} : (bytes - 1 + 3) / 4;  // as estimated_tokens counts
  };
  // The weakest line goes first (the older one of equals), until the rest fits.
  while (!lines.empty() && total(lines) > max_tokens) {
    auto weakest = std::min_element(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
      return a.score < b.score || (a.score == b.score && a.order < b.order);
    });
    if (lines.size() == 1) {
      lines.front().text =
          capped(lines.front().text, static_cast<size_t>(std::max<int64_t>(max_tokens * 4 - 3, 0)));
      if (total(lines) > max_tokens || lines.front().text == "\u2026") lines.clear();
      break;
    }
    lines.erase(weakest);
  }
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += '\n';
    out += l.text;
  }
  return out;
}

}  // namespace parley::summary
