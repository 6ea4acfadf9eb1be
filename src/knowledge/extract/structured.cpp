// JSON and YAML as readable text: every value on a line of its own, after its path
// ("servers[0].url: https://api.example.com"), so that a question about a setting finds the
// line that names it. Both are read as a stream of events (nlohmann's SAX interface,
// yaml-cpp's EventHandler): no tree is built, memory stays proportional to the output, and
// nesting past ExtractLimits::max_depth stops the parse with a clear error. Lines are grouped
// into blocks by their first two path components; with an object at the top, each top-level
// key is a heading.
#include <algorithm>
#include <map>
#include <sstream>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>
#include <nlohmann/json.hpp>

#include "knowledge/extract/builder.hpp"
#include "knowledge/extract/extractors.hpp"

namespace parley::knowledge {

namespace {

constexpr size_t kMaxKeyBytes = 256;         // of one key in a path
constexpr size_t kMaxBlockBytes = 16 << 10;  // lines are flushed as a block past this

std::string clip_key(std::string_view key) {
  if (key.size() <= kMaxKeyBytes) return std::string(key);
  size_t cut = kMaxKeyBytes;
  while (cut > 0 && (static_cast<unsigned char>(key[cut]) & 0xC0) == 0x80) --cut;
  return std::string(key.substr(0, cut)) + "…";
}

// Turns container and value events into "path: value" lines.
class Flattener {
 public:
  Flattener(DocumentBuilder& builder, int max_depth) : builder_(builder), max_depth_(max_depth) {}

  // False when the nesting is too deep (the builder then holds the error).
  bool begin_container(bool is_array) {
    if (static_cast<int>(stack_.size()) >= max_depth_) {
      builder_.fail(
          Error::invalid("the document nests deeper than " + std::to_string(max_depth_) + " levels",
                         "document_too_deep"));
      return false;
    }
    Frame frame;
    frame.array = is_array;
    frame.path = child_path();
    if (!stack_.empty()) stack_.back().children++;
    advance();
    stack_.push_back(std::move(frame));
    return true;
  }

  void end_container() {
    if (stack_.empty()) return;
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    if (frame.children == 0) emit_line(frame.path, frame.array ? "[]" : "{}");
  }

  void key(std::string_view key) {
    if (!stack_.empty()) stack_.back().key = clip_key(key);
  }

  void value(std::string_view text) {
    if (!stack_.empty()) stack_.back().children++;
    emit_line(child_path(), text);
    advance();
  }

  bool in_object() const { return !stack_.empty() && !stack_.back().array; }

  void finish() { flush(); }

 private:
  struct Frame {
    bool array = false;
    size_t index = 0;  // of the next element, in an array
    std::string key;   // of the next value, in an object
    std::string path;  // of this container
    size_t children = 0;
  };

  // The path of the value the next event describes.
  std::string child_path() const {
    if (stack_.empty()) return {};
    const Frame& parent = stack_.back();
    if (parent.array) return parent.path + "[" + std::to_string(parent.index) + "]";
    return parent.path.empty() ? parent.key : parent.path + "." + parent.key;
  }

  void advance() {
    if (!stack_.empty() && stack_.back().array) stack_.back().index++;
  }

  // The path's first component ("servers" of "servers[0].url").
  static std::string top_of(std::string_view path) {
    for (size_t i = 1; i < path.size(); ++i) {
      if (path[i] == '.' || path[i] == '[') return std::string(path.substr(0, i));
    }
    return std::string(path);
  }

  // Lines share a block while they sit in the same container, counted to two levels below
  // the top ("info", "paths./pets", "servers[0]").
  std::string current_group() const {
    if (stack_.empty()) return {};
    return stack_[std::min<size_t>(stack_.size(), 3) - 1].path;
  }

  void emit_line(const std::string& path, std::string_view text) {
    if (builder_.failed()) return;
    const std::string top = top_of(path);
    const std::string group = current_group();
    if (group != group_ || block_.size() > kMaxBlockBytes) {
      flush();
      group_ = group;
      const bool top_level_object = !stack_.empty() && !stack_.front().array;
      if (top_level_object && !group.empty() && top != heading_) {
        heading_ = top;
        builder_.heading(1, top);
      }
    }
    if (!block_.empty()) block_ += '\n';
    if (!path.empty()) {
      block_ += path;
      block_ += ": ";
    }
    block_ += text;
  }

  void flush() {
    if (!block_.empty()) builder_.add(BlockKind::kParagraph, block_);
    block_.clear();
  }

  DocumentBuilder& builder_;
  int max_depth_;
  std::vector<Frame> stack_;
  std::string block_;
  std::string group_;
  std::string heading_;
};

class JsonEvents {
 public:
  explicit JsonEvents(Flattener& out) : out_(out) {}

  bool null() { return value("null"); }
  bool boolean(bool v) { return value(v ? "true" : "false"); }
  bool number_integer(int64_t v) { return value(std::to_string(v)); }
  bool number_unsigned(uint64_t v) { return value(std::to_string(v)); }
  bool number_float(double, const std::string& text) { return value(text); }
  bool string(std::string& v) { return value(v); }
  bool binary(nlohmann::json::binary_t&) { return value("(binary)"); }
  bool start_object(size_t) { return out_.begin_container(false); }
  bool key(std::string& k) {
    out_.key(k);
    return true;
  }
  bool end_object() {
    out_.end_container();
    return true;
  }
  bool start_array(size_t) { return out_.begin_container(true); }
  bool end_array() {
    out_.end_container();
    return true;
  }
  bool parse_error(size_t position, const std::string&, const nlohmann::json::exception& e) {
    std::string what = e.what();
    const auto colon = what.find(": ");
    if (colon != std::string::npos) what = what.substr(colon + 2);
    error =
        "not valid JSON at byte " + std::to_string(position > 0 ? position - 1 : 0) + ": " + what;
    return false;
  }

  std::string error;

 private:
  bool value(std::string_view text) {
    out_.value(text);
    return true;
  }
  Flattener& out_;
};

// yaml-cpp reports a mapping as alternating key and value events; a key that is itself a
// collection (rare) is shown as "?" and its contents are skipped.
class YamlEvents : public YAML::EventHandler {
 public:
  YamlEvents(Flattener& out, DocumentBuilder& builder) : out_(out), builder_(builder) {}

  struct Stop {};  // thrown to end the parse once the builder failed

  void OnDocumentStart(const YAML::Mark&) override { documents_++; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override { scalar("null", anchor); }
  void OnAlias(const YAML::Mark&, YAML::anchor_t anchor) override {
    const auto it = anchors_.find(anchor);
    scalar(it == anchors_.end() ? "(alias)" : "(same as " + it->second + ")", 0);
  }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    scalar(value, anchor);
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    container(true, anchor);
  }
  void OnSequenceEnd() override { end(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    container(false, anchor);
  }
  void OnMapEnd() override { end(); }

  int documents() const { return documents_; }

 private:
  struct Level {
    bool map = false;
    bool expect_key = true;
  };

  void scalar(const std::string& value, YAML::anchor_t anchor) {
    if (skipping_ > 0) return;
    if (!levels_.empty() && levels_.back().map && levels_.back().expect_key) {
      out_.key(value);
      levels_.back().expect_key = false;
      return;
    }
    if (anchor != 0) anchors_[anchor] = value;
    out_.value(value);
    if (!levels_.empty() && levels_.back().map) levels_.back().expect_key = true;
  }

  void container(bool sequence, YAML::anchor_t anchor) {
    if (skipping_ > 0) {
      skipping_++;
      return;
    }
    if (!levels_.empty() && levels_.back().map && levels_.back().expect_key) {
      out_.key("?");
      levels_.back().expect_key = false;
      skipping_ = 1;
      return;
    }
    if (!out_.begin_container(sequence)) throw Stop{};
    if (anchor != 0) anchors_[anchor] = sequence ? "a list" : "a mapping";
    levels_.push_back({!sequence, true});
  }

  void end() {
    if (skipping_ > 0) {
      skipping_--;
      return;
    }
    out_.end_container();
    if (!levels_.empty()) levels_.pop_back();
    if (!levels_.empty() && levels_.back().map) levels_.back().expect_key = true;
    if (builder_.failed()) throw Stop{};
  }

  Flattener& out_;
  DocumentBuilder& builder_;
  std::vector<Level> levels_;
  std::map<YAML::anchor_t, std::string> anchors_;
  int skipping_ = 0;
  int documents_ = 0;
};

}  // namespace

Result<Extracted> extract_json(std::string_view text, const ExtractLimits& limits) {
  DocumentBuilder builder(Format::kJson, limits);
  Flattener flat(builder, limits.max_depth);
  JsonEvents events(flat);
  const bool parsed = nlohmann::json::sax_parse(text.begin(), text.end(), &events,
                                                nlohmann::json::input_format_t::json,
                                                /*strict=*/true);
  if (!parsed && !builder.failed()) {
    builder.fail(
        Error::invalid(events.error.empty() ? "not valid JSON" : events.error, "invalid_document"));
  }
  flat.finish();
  return std::move(builder).finish();
}

Result<Extracted> extract_yaml(std::string_view text, const ExtractLimits& limits) {
  DocumentBuilder builder(Format::kYaml, limits);
  Flattener flat(builder, limits.max_depth);
  YamlEvents events(flat, builder);
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(events)) {
      if (builder.failed()) break;
    }
  } catch (const YamlEvents::Stop&) {
    // the builder holds the reason
  } catch (const YAML::DeepRecursion&) {
    builder.fail(Error::invalid("the YAML nests too deeply", "document_too_deep"));
  } catch (const YAML::Exception& e) {
    builder.fail(Error::invalid("not valid YAML at line " + std::to_string(e.mark.line + 1) +
                                    ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg,
                                "invalid_document"));
  }
  flat.finish();
  return std::move(builder).finish();
}

}  // namespace parley::knowledge
