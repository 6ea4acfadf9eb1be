// Long-term memory extraction without I/O: the built-in rules (memory/rules.hpp) on each
// phrasing they understand and, as much, on what they must leave alone (questions,
// hypotheticals, quoted and reported speech, negations, other people, vague or overlong
// values); and the model's wire format (memory/extract_wire.hpp): the prompt, and a parser that
// takes JSON out of fences and prose and drops what it cannot use.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "knowledge/extract/text_utils.hpp"
#include "memory/extract_wire.hpp"
#include "memory/rules.hpp"

namespace {

using parley::ErrorCode;
using parley::knowledge::valid_utf8;
using parley::memory::Candidate;
using parley::memory::clean_memory_text;
using parley::memory::Event;
using parley::memory::event_name;
using parley::memory::extract_by_rules;
using parley::memory::extraction_messages;
using parley::memory::extraction_system_prompt;
using parley::memory::kMaxMemoryTextBytes;
using parley::memory::kMaxProposals;
using parley::memory::kMaxSlotBytes;
using parley::memory::parse_event;
using parley::memory::parse_model_proposals;
using parley::memory::Proposal;

constexpr size_t kHundredKiB = size_t{100} * 1024;

// Proposals as text, so that a mismatch shows all of them.
std::string describe(const std::vector<Proposal>& proposals) {
  std::string out;
  for (const auto& p : proposals) {
    out += "[" + std::string(event_name(p.event)) + " " + p.kind + " slot=" + p.slot + " \"" +
           p.text + "\" query=\"" + p.query + "\"] ";
  }
  return out.empty() ? "(none)" : out;
}

// The one proposal `message` must yield.
Proposal only(std::string_view message) {
  const auto proposals = extract_by_rules(message);
  EXPECT_EQ(proposals.size(), 1u) << message << " -> " << describe(proposals);
  return proposals.empty() ? Proposal{} : proposals.front();
}

// The texts `message` yields, in order.
std::vector<std::string> texts(std::string_view message) {
  std::vector<std::string> out;
  for (const auto& p : extract_by_rules(message)) out.push_back(p.text);
  return out;
}

void expect_nothing(std::string_view message) {
  const auto proposals = extract_by_rules(message);
  EXPECT_TRUE(proposals.empty()) << message << " -> " << describe(proposals);
}

// --- names -----------------------------------------------------------------------------------

TEST(MemoryRules, EventNamesRoundTripIgnoringCase) {
  for (auto event : {Event::kAdd, Event::kUpdate, Event::kRetire, Event::kDelete, Event::kNone}) {
    EXPECT_EQ(parse_event(event_name(event)), event);
  }
  EXPECT_EQ(event_name(Event::kRetire), "RETIRE");
  EXPECT_EQ(parse_event("update"), Event::kUpdate);
  EXPECT_EQ(parse_event("Delete"), Event::kDelete);
  EXPECT_FALSE(parse_event("").has_value());
  EXPECT_FALSE(parse_event("ADDED").has_value());
  EXPECT_FALSE(parse_event("REMOVE").has_value());
}

// --- statements about the user ----------------------------------------------------------------

TEST(MemoryRules, NameFromEachPhrasing) {
  const Proposal p = only("My name is Ana.");
  EXPECT_EQ(p.event, Event::kAdd);
  EXPECT_EQ(p.text, "Name is Ana");
  EXPECT_EQ(p.kind, "profile");
  EXPECT_EQ(p.slot, "name");
  EXPECT_GE(p.importance, 0.85);
  EXPECT_EQ(p.retention, "permanent");
  EXPECT_EQ(only("I'm called Zoë Martin, nice to meet you!").text, "Name is Zoë Martin");
  EXPECT_EQ(only("I am called Sam").text, "Name is Sam");
  EXPECT_EQ(only("Call me Ishmael.").text, "Name is Ishmael");
  EXPECT_EQ(only("You can call me Sam.").text, "Name is Sam");
  EXPECT_EQ(only("I go by Sam.").text, "Name is Sam");
  EXPECT_EQ(only("Hi, I'm Ana!").text, "Name is Ana");
  EXPECT_EQ(only("Hello there, I'm Ana Silva and I need help with Python.").text,
            "Name is Ana Silva");
  EXPECT_EQ(only("my name's Ana").text, "Name is Ana");
  EXPECT_EQ(only("My full name is Ana Maria da Silva").text, "Name is Ana Maria da Silva");
}

TEST(MemoryRules, NameKeepsTheUsersCasingAndStopsAtTheClauseEnd) {
  EXPECT_EQ(only("my name is ana").text, "Name is ana");
  EXPECT_EQ(only("MY NAME IS ANA").text, "Name is ANA");
  EXPECT_EQ(texts("my name is Ana and I live in Lisbon"),
            (std::vector<std::string>{"Name is Ana", "Lives in Lisbon"}));
  EXPECT_EQ(only("My name is Ana, by the way").text, "Name is Ana");
  EXPECT_EQ(only("My name is Ana but I'm not sure why").text, "Name is Ana");
}

TEST(MemoryRules, NotANameWhenItReadsLikeSomethingElse) {
  expect_nothing("call me later");
  expect_nothing("Call me maybe");
  expect_nothing("Call me back when you can");
  expect_nothing("Hi, I'm tired.");
  expect_nothing("Hello, I'm new here");
  expect_nothing("I'm Ana.");  // no greeting: "I'm <word>" is usually a state, not a name
  expect_nothing("My name is on the list");
  expect_nothing("My name is Ana Maria da Silva Santos Pereira");  // over four words
}

TEST(MemoryRules, LocationHometownAndMoves) {
  const Proposal lives = only("I live in São Paulo now.");
  EXPECT_EQ(lives.text, "Lives in São Paulo");
  EXPECT_EQ(lives.slot, "location");
  EXPECT_EQ(lives.kind, "profile");
  EXPECT_EQ(only("I live in Paris, France.").text, "Lives in Paris, France");
  EXPECT_EQ(only("I just moved to Berlin.").text, "Lives in Berlin");
  EXPECT_EQ(only("I've moved to Berlin").slot, "location");
  EXPECT_EQ(only("I'm based in Toronto").text, "Lives in Toronto");
  EXPECT_EQ(only("I live in St. Louis.").text, "Lives in St. Louis");
  const Proposal from = only("I'm originally from Kyiv.");
  EXPECT_EQ(from.text, "Is from Kyiv");
  EXPECT_EQ(from.slot, "hometown");
  EXPECT_EQ(only("I come from Lisbon, Portugal").text, "Is from Lisbon, Portugal");
  expect_nothing("I live in fear.");
  expect_nothing("I'm from here.");
  expect_nothing("I live in the moment");
}

TEST(MemoryRules, EmployerAndOccupation) {
  const Proposal at = only("I work at Google.");
  EXPECT_EQ(at.text, "Works at Google");
  EXPECT_EQ(at.slot, "employer");
  EXPECT_EQ(only("I work for Acme Corp for five years").text, "Works for Acme Corp");
  EXPECT_EQ(only("I'm employed by Acme").text, "Works for Acme");
  const Proposal as = only("I work as a software engineer.");
  EXPECT_EQ(as.text, "Works as a software engineer");
  EXPECT_EQ(as.slot, "occupation");
  EXPECT_EQ(only("I work as an architect").text, "Works as an architect");
  EXPECT_EQ(only("I'm a nurse by profession.").text, "Works as a nurse");
  expect_nothing("I'm a bit tired.");
  expect_nothing("I'm a nurse");  // without "by profession" it may be anything
  expect_nothing("I work at home.");
  expect_nothing("Actually, I work from home.");
}

TEST(MemoryRules, Allergies) {
  const Proposal p = only("I'm allergic to peanuts and shellfish.");
  EXPECT_EQ(p.text, "Is allergic to peanuts and shellfish");
  EXPECT_EQ(p.kind, "fact");
  EXPECT_TRUE(p.slot.empty());
  EXPECT_GE(p.importance, 0.85);
  EXPECT_EQ(p.retention, "permanent");
  EXPECT_EQ(only("I am severely allergic to cats, dogs, and horses but not birds.").text,
            "Is allergic to cats, dogs, and horses");
  EXPECT_EQ(texts("I'm allergic to nuts and I live in Paris."),
            (std::vector<std::string>{"Is allergic to nuts", "Lives in Paris"}));
}

TEST(MemoryRules, Preferences) {
  EXPECT_EQ(only("I prefer short answers.").text, "Prefers short answers");
  EXPECT_EQ(only("I like green tea, dark chocolate and long walks.").text,
            "Likes green tea, dark chocolate and long walks");
  EXPECT_EQ(only("I really love hiking").text, "Loves hiking");
  EXPECT_EQ(only("I hate mornings!").text, "Hates mornings");
  EXPECT_EQ(only("I don't like cilantro.").text, "Dislikes cilantro");
  EXPECT_EQ(only("I do not like cilantro").text, "Dislikes cilantro");
  EXPECT_EQ(only("I dislike loud music.").text, "Dislikes loud music");
  EXPECT_EQ(only("I love my job").text, "Loves their job");
  EXPECT_EQ(only("I like tea so much!").text, "Likes tea");
  const Proposal p = only("I like jazz");
  EXPECT_EQ(p.kind, "preference");
  EXPECT_TRUE(p.slot.empty());
  EXPECT_EQ(texts("I love hiking. I hate mornings."),
            (std::vector<std::string>{"Loves hiking", "Hates mornings"}));
}

TEST(MemoryRules, NoPreferenceForPronounsOrTheAssistant) {
  expect_nothing("I like it.");
  expect_nothing("I love you");
  expect_nothing("I love how you explain things.");
  expect_nothing("i hate it when you do that");
  expect_nothing("I like that");
  expect_nothing("I'd like a coffee");  // a request, not a taste
  expect_nothing("The thing I like most is tea.");
}

TEST(MemoryRules, Favorites) {
  const Proposal p = only("My favorite color is blue.");
  EXPECT_EQ(p.text, "Favorite color is blue");
  EXPECT_EQ(p.slot, "favorite color");
  EXPECT_EQ(p.kind, "preference");
  const Proposal british = only("My favourite colour is dark green");
  EXPECT_EQ(british.text, "Favourite colour is dark green");
  EXPECT_EQ(british.slot, "favorite colour");
  EXPECT_EQ(only("My favorite book is \"Dune\".").text, "Favorite book is Dune");
  EXPECT_EQ(texts("My favourite colour is green, but I also like red."),
            (std::vector<std::string>{"Favourite colour is green", "Likes red"}));
}

TEST(MemoryRules, GenericAttributes) {
  const Proposal birthday = only("My birthday is March 3rd.");
  EXPECT_EQ(birthday.text, "Birthday is March 3rd");
  EXPECT_EQ(birthday.slot, "birthday");
  EXPECT_EQ(birthday.kind, "fact");
  EXPECT_EQ(only("My email is ana@example.com.").text, "Email is ana@example.com");
  EXPECT_EQ(only("My phone number is +1 415 555 0132.").slot, "phone number");
  const Proposal dog = only("My dog's name is Rex.");
  EXPECT_EQ(dog.text, "Dog's name is Rex");
  EXPECT_EQ(dog.slot, "dog's name");
  // Said the other way, the same slot.
  EXPECT_EQ(only("My dog is called Rex.").slot, "dog's name");
  EXPECT_EQ(only("My wife is called Eva").text, "Wife's name is Eva");
  const Proposal address = only("My new address is 12 Rue de Rivoli, 75001 Paris.");
  EXPECT_EQ(address.text, "Address is 12 Rue de Rivoli, 75001 Paris");
  EXPECT_EQ(address.slot, "address");
  EXPECT_EQ(texts("My son's name is Leo and my daughter's name is Mia."),
            (std::vector<std::string>{"Son's name is Leo", "Daughter's name is Mia"}));
}

TEST(MemoryRules, NoAttributeThatIsVagueSecretOrAboutSomeoneElse) {
  expect_nothing("My password is hunter2.");
  expect_nothing("My card number is 4111 1111 1111 1111");
  expect_nothing("My PIN is 1234");
  expect_nothing("My problem is that the code crashes.");
  expect_nothing("My guess is 42.");
  expect_nothing("My question is simple");
  expect_nothing("My order is #12345");
  expect_nothing("My internet is so slow.");
  expect_nothing("My wife is a doctor");
}

// --- remember ---------------------------------------------------------------------------------

TEST(MemoryRules, RememberUsesASpecificPhrasingWhenThereIsOne) {
  const Proposal p = only("Remember that my name is Ana.");
  EXPECT_EQ(p.text, "Name is Ana");
  EXPECT_EQ(p.slot, "name");
  EXPECT_EQ(only("Please remember I live in Rome").slot, "location");
  EXPECT_EQ(only("Don't forget that I'm allergic to bees").text, "Is allergic to bees");
}

TEST(MemoryRules, RememberRewritesTheClauseAboutTheUser) {
  const Proposal vegan = only("Please remember that I'm vegan.");
  EXPECT_EQ(vegan.text, "Is vegan");
  EXPECT_EQ(vegan.kind, "fact");
  EXPECT_TRUE(vegan.slot.empty());
  EXPECT_DOUBLE_EQ(vegan.importance, 0.7);
  EXPECT_EQ(only("Remember that I am left-handed").text, "Is left-handed");
  EXPECT_EQ(only("Remember that I have two cats.").text, "Has two cats");
  EXPECT_EQ(only("Keep in mind that I've got ADHD").text, "Has got ADHD");
  EXPECT_EQ(only("Note that I was born in Porto").text, "Was born in Porto");
  EXPECT_EQ(only("remember that I can't eat gluten").text, "Can't eat gluten");
  EXPECT_EQ(only("remember I don't eat pork").text, "Doesn't eat pork");
  EXPECT_EQ(only("Remember that I usually drink coffee at 8.").text, "Usually drinks coffee at 8");
  EXPECT_EQ(only("Remember that I need large fonts").text, "Needs large fonts");
  EXPECT_EQ(only("Remember that I watch my weight").text, "Watches their weight");
  EXPECT_EQ(only("Remember that I moved here for my partner").text, "Moved here for their partner");
  // A verb this cannot conjugate safely: the user's words, quoted.
  EXPECT_EQ(only("Remember that I jog every morning.").text, "User said: \"I jog every morning\"");
  // Not about "I": capitalised, pronouns in the third person.
  EXPECT_EQ(only("Remember that the cat I adopted hates me").text,
            "The cat they adopted hates them");
}

TEST(MemoryRules, RememberingADateIsAnEvent) {
  const Proposal p = only("Don't forget that my sister's wedding is on Friday.");
  EXPECT_EQ(p.text, "Their sister's wedding is on Friday");
  EXPECT_EQ(p.kind, "event");
  EXPECT_EQ(only("Remember that the meeting with my boss is tomorrow at 3pm.").kind, "event");
  EXPECT_EQ(only("Remember that I fly to Oslo on the 5th").kind, "event");
  EXPECT_EQ(only("Remember that I fly to Oslo on 5/12").kind, "event");
  EXPECT_EQ(only("Remember that I fly to Oslo soon").kind, "fact");
}

TEST(MemoryRules, NothingToRememberInVagueRequests) {
  expect_nothing("Remember when we talked about Rome?");
  expect_nothing("remember to drink water");
  expect_nothing("Remember that.");
  expect_nothing("I remember that day well");
}

// --- instructions -----------------------------------------------------------------------------

TEST(MemoryRules, Instructions) {
  const Proposal never = only("Never use emojis.");
  EXPECT_EQ(never.text, "Never use emojis");
  EXPECT_EQ(never.kind, "instruction");
  EXPECT_TRUE(never.slot.empty());
  EXPECT_EQ(only("Always be concise.").text, "Always be concise");
  EXPECT_EQ(only("Always greet me by name.").text, "Always greet me by name");  // words kept
  EXPECT_EQ(only("From now on, answer briefly.").text, "Answer briefly");
  EXPECT_EQ(only("From now on, answer briefly.").kind, "instruction");
  // What follows "from now on" may be a statement after all.
  EXPECT_EQ(only("From now on, call me Annie.").slot, "name");
  EXPECT_EQ(only("From now on I'm vegetarian.").text, "Is vegetarian");
  expect_nothing("Never mind.");
  expect_nothing("I always drink tea");  // "always" not at the start: a habit, not an order
  expect_nothing("please answer in bullet points");  // one reply's format, not a standing rule
}

TEST(MemoryRules, ReplyLanguageIsASlot) {
  const Proposal p = only("Always answer in French.");
  EXPECT_EQ(p.text, "Always answer in French");
  EXPECT_EQ(p.kind, "instruction");
  EXPECT_EQ(p.slot, "reply language");
  EXPECT_EQ(only("Please answer in Spanish.").text, "Always answer in Spanish");
  EXPECT_EQ(only("Reply in English only.").slot, "reply language");
  EXPECT_EQ(only("please respond in german").text, "Always answer in german");
  EXPECT_EQ(only("Please reply in Brazilian Portuguese.").text,
            "Always answer in Brazilian Portuguese");
  EXPECT_EQ(only("In the future, always reply in German.").slot, "reply language");
  expect_nothing("answer in detail");
  expect_nothing("Never answer in French?");
}

// --- forgetting -------------------------------------------------------------------------------

TEST(MemoryRules, ForgetMyX) {
  const Proposal p = only("Forget my address.");
  EXPECT_EQ(p.event, Event::kDelete);
  EXPECT_EQ(p.query, "my address");
  EXPECT_EQ(p.slot, "address");
  EXPECT_FALSE(p.text.empty());
  EXPECT_EQ(only("Please forget my name").slot, "name");
  EXPECT_EQ(only("forget about my favorite color").slot, "favorite color");
  EXPECT_EQ(only("Forget my job").slot, "employer");
  EXPECT_EQ(only("Forget my allergies").slot, "");  // several may coexist
  EXPECT_EQ(only("Could you forget my address?").query, "my address");
}

TEST(MemoryRules, ForgetThatAndForgetAbout) {
  const Proposal p = only("Forget that I live in Paris.");
  EXPECT_EQ(p.event, Event::kDelete);
  EXPECT_EQ(p.slot, "location");
  EXPECT_EQ(p.query, "Lives in Paris");
  const Proposal job = only("Forget what I said about my job.");
  EXPECT_EQ(job.event, Event::kDelete);
  EXPECT_EQ(job.slot, "employer");
  EXPECT_EQ(job.query, "my job");
  const Proposal cat = only("forget that I have a cat");
  EXPECT_EQ(cat.query, "Has a cat");
  EXPECT_EQ(only("Forget about the trip to Rome").query, "the trip to Rome");
  expect_nothing("Forget it.");
  expect_nothing("Forget everything.");
  expect_nothing("forget what I said");
  expect_nothing("I don't forget things");
}

TEST(MemoryRules, NoLongerTrueIsADeletion) {
  const Proposal lives = only("I no longer live in Paris.");
  EXPECT_EQ(lives.event, Event::kDelete);
  EXPECT_EQ(lives.slot, "location");
  EXPECT_EQ(lives.query, "Lives in Paris");
  const Proposal work = only("I don't work at Google anymore.");
  EXPECT_EQ(work.event, Event::kDelete);
  EXPECT_EQ(work.slot, "employer");
  EXPECT_EQ(work.query, "Works at Google");
  const Proposal allergy = only("I'm not allergic to penicillin anymore.");
  EXPECT_EQ(allergy.event, Event::kDelete);
  EXPECT_EQ(allergy.slot, "");
  EXPECT_EQ(allergy.query, "Is allergic to penicillin");
  EXPECT_EQ(only("I'm no longer allergic to cats").query, "Is allergic to cats");
  EXPECT_EQ(only("I don't work there any more").slot, "employer");
  EXPECT_EQ(only("I no longer like coffee").query, "Likes coffee");
  const Proposal color = only("My favorite color is no longer blue.");
  EXPECT_EQ(color.slot, "favorite color");
  EXPECT_EQ(color.query, "Favorite color is blue");
}

// --- what yields nothing ----------------------------------------------------------------------

TEST(MemoryRules, NothingFromQuestions) {
  expect_nothing("What is my name?");
  expect_nothing("Do I like tea?");
  expect_nothing("Do I like tea");  // a question without its mark
  expect_nothing("What's my name");
  expect_nothing("Is my name Ana");
  expect_nothing("I live in Paris, what about you?");
  expect_nothing("Can you answer in french?");
  // A question next to a statement leaves the statement alone.
  EXPECT_EQ(texts("What's the weather like? I live in Rome."),
            (std::vector<std::string>{"Lives in Rome"}));
}

TEST(MemoryRules, PoliteRequestsAreNotQuestions) {
  EXPECT_EQ(only("Can you remember that my name is Ana?").text, "Name is Ana");
  EXPECT_EQ(only("Could you please remember that I'm vegan?").text, "Is vegan");
  EXPECT_EQ(only("could you call me Annie?").text, "Name is Annie");
}

TEST(MemoryRules, NothingFromHypotheticalsOrReportedSpeech) {
  expect_nothing("If my name were Bob, I'd be sad.");
  expect_nothing("Imagine I live in Paris.");
  expect_nothing("Suppose my name is Bob.");
  expect_nothing("Let's say I live in Paris.");
  expect_nothing("Pretend that I'm allergic to cats");
  expect_nothing("For example, my name is Bob.");
  expect_nothing("Write a story where my name is Bob");
  expect_nothing("My friend told me my name is weird.");
  expect_nothing("He said I live in Paris");
  expect_nothing("She said \"my name is Bob\".");
  expect_nothing("\"My name is Bob,\" he said.");
  expect_nothing("The sign read \xE2\x80\x9CI live in Paris\xE2\x80\x9D");
}

TEST(MemoryRules, NothingFromPlainNegations) {
  expect_nothing("My name is not Bob.");
  expect_nothing("My name isn't Bob");
  expect_nothing("I don't live in Paris.");
  expect_nothing("I'm not allergic to cats.");
  expect_nothing("I don't work at Google");
}

TEST(MemoryRules, NothingAboutOtherPeople) {
  expect_nothing("He lives in Paris.");
  expect_nothing("Ana likes tea.");
  expect_nothing("His name is Bob.");
  expect_nothing("Her favorite color is red");
  expect_nothing("My friend lives in Berlin");
}

TEST(MemoryRules, NothingFromOverlongValues) {
  expect_nothing(
      "I live in one two three four five six seven eight nine ten eleven twelve thirteen");
  EXPECT_EQ(extract_by_rules("I live in one two three four five six seven eight nine ten eleven "
                             "twelve")
                .size(),
            1u);
}

// --- text, dedupe, limits ---------------------------------------------------------------------

TEST(MemoryRules, PunctuationTrimmedAndWhitespaceCollapsed) {
  EXPECT_EQ(only("My   favorite\tcolor is   dark    blue!!!").text, "Favorite color is dark blue");
  EXPECT_EQ(only("I live in Rome...").text, "Lives in Rome");
  EXPECT_EQ(only("I like tea;").text, "Likes tea");
  EXPECT_EQ(only("My name is \xC2\xA0 Ana").text, "Name is Ana");  // a no-break space
}

TEST(MemoryRules, SentencesAndLinesAreHandledOneByOne) {
  EXPECT_EQ(texts("My name is Ana\nI live in Rome"),
            (std::vector<std::string>{"Name is Ana", "Lives in Rome"}));
  EXPECT_EQ(texts("I live in Rome; I work at FAO."),
            (std::vector<std::string>{"Lives in Rome", "Works at FAO"}));
  EXPECT_EQ(texts("I said no. My name is Ana."), (std::vector<std::string>{"Name is Ana"}));
}

TEST(MemoryRules, SayingItTwiceYieldsOneProposal) {
  EXPECT_EQ(extract_by_rules("My name is Ana. My name is Ana!").size(), 1u);
  EXPECT_EQ(texts("I like tea. I LIKE Tea. i like tea"), (std::vector<std::string>{"Likes tea"}));
  EXPECT_EQ(extract_by_rules("I like tea and I like tea").size(), 1u);
}

TEST(MemoryRules, TheLastValueOfASlotWins) {
  EXPECT_EQ(only("My name is Alexander but call me Alex.").text, "Name is Alex");
  EXPECT_EQ(only("My name is Bob. Actually, my name is Rob.").text, "Name is Rob");
}

TEST(MemoryRules, Utf8ValuesSurviveAndBadBytesAreReplaced) {
  EXPECT_EQ(only("My name is Zoë").text, "Name is Zoë");
  EXPECT_EQ(only("I live in São Paulo").text, "Lives in São Paulo");
  EXPECT_EQ(texts("I\xE2\x80\x99m from Zürich and I\xE2\x80\x99m allergic to cats."),
            (std::vector<std::string>{"Is from Zürich", "Is allergic to cats"}));
  const Proposal bad = only("My name is Zo\xC3");
  EXPECT_EQ(bad.text, "Name is Zo\xEF\xBF\xBD");
  EXPECT_TRUE(valid_utf8(bad.text));
}

TEST(MemoryRules, TextsAreCutAtACharacterBoundary) {
  std::string emoji;  // one word of 4-byte characters, far past the limit
  for (int k = 0; k < 300; ++k) emoji += "\xF0\x9F\x98\x80";
  const Proposal p = only("I like " + emoji);
  EXPECT_LE(p.text.size(), kMaxMemoryTextBytes);
  EXPECT_EQ(p.text.size(), 498u);  // "Likes " and 123 whole characters
  EXPECT_TRUE(valid_utf8(p.text));
}

TEST(MemoryRules, AtMostMaxProposals) {
  std::string message;
  for (int k = 0; k < 40; ++k) message += "I like thing" + std::to_string(k) + ". ";
  const auto proposals = extract_by_rules(message);
  EXPECT_EQ(proposals.size(), kMaxProposals);
  EXPECT_EQ(proposals.front().text, "Likes thing0");
}

TEST(MemoryRules, ArbitraryInputOf100KiBComesBack) {
  // Word soup with every keyword, quotes, stray UTF-8 lead bytes and no sentence ends for
  // long stretches; then raw bytes. Only that it returns, and returns clean texts.
  const std::vector<std::string_view> words = {
      "I",      "my",       "name",  "is",       "I'm",   "live",     "in",   "like",
      "and",    ",",        ".",     "?",        "\"",    "remember", "that", "forget",
      "always", "never",    "from",  "now",      "on",    "Ana",      "Zoë",  "\xE2\x80\x9C",
      "!",      "anymore",  "no",    "longer",   "don't", "work",     "at",   "call",
      "me",     "favorite", "color", "allergic", "to",    "\xC3",     "\xFF", "\n"};
  uint32_t state = 12345;
  const auto next = [&] {
    state = state * 1103515245u + 12345u;
    return state >> 8;
  };
  std::string soup;
  while (soup.size() < kHundredKiB) {
    soup += words[next() % words.size()];
    if (next() % 4 != 0) soup += ' ';
  }
  std::string bytes(kHundredKiB, '\0');
  for (char& c : bytes) c = static_cast<char>(next());
  for (const std::string& input : {soup, bytes, std::string(kHundredKiB, 'a')}) {
    const auto proposals = extract_by_rules(input);
    EXPECT_LE(proposals.size(), kMaxProposals);
    for (const auto& p : proposals) {
      EXPECT_FALSE(p.text.empty());
      EXPECT_LE(p.text.size(), kMaxMemoryTextBytes);
      EXPECT_TRUE(valid_utf8(p.text));
      EXPECT_TRUE(valid_utf8(p.slot));
      EXPECT_LE(p.slot.size(), kMaxSlotBytes);
    }
  }
}

TEST(MemoryRules, CleanMemoryText) {
  EXPECT_EQ(clean_memory_text("  a \t b\n\nc  ", 100), "a b c");
  EXPECT_EQ(clean_memory_text("", 100), "");
  EXPECT_EQ(clean_memory_text("   ", 100), "");
  EXPECT_EQ(clean_memory_text("a\x01"
                              "b",
                              100),
            "a b");
  EXPECT_EQ(clean_memory_text("\xFF", 100), "\xEF\xBF\xBD");
  EXPECT_EQ(clean_memory_text("abc\xC3\xA9", 4), "abc");   // never half of "é"
  EXPECT_EQ(clean_memory_text("abc \xC3\xA9", 5), "abc");  // nor a trailing space
  EXPECT_EQ(clean_memory_text("ab\xC3\xA9", 4), "ab\xC3\xA9");
}

// --- the model's wire format ------------------------------------------------------------------

TEST(MemoryWire, SystemPromptNamesEveryEventAndTheShape) {
  const std::string prompt = extraction_system_prompt();
  for (auto event : {Event::kAdd, Event::kUpdate, Event::kRetire, Event::kDelete, Event::kNone}) {
    EXPECT_NE(prompt.find(event_name(event)), std::string::npos) << event_name(event);
  }
  for (std::string_view word : {"\"memories\"", "\"ref\"", "\"slot\"", "\"retention\"",
                                "\"importance\"", "password", "Name is Ana"}) {
    EXPECT_NE(prompt.find(word), std::string::npos) << word;
  }
}

TEST(MemoryWire, MessagesNumberTheExistingMemoriesFromZero) {
  const std::vector<Candidate> existing = {{"Name is Ana", "profile", "name"},
                                           {"Likes tea", "preference", ""}};
  const nlohmann::json messages =
      extraction_messages("I moved to Porto", "Nice, Porto is lovely.", existing);
  ASSERT_TRUE(messages.is_array());
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0]["role"], "system");
  EXPECT_EQ(messages[0]["content"], extraction_system_prompt());
  EXPECT_EQ(messages[1]["role"], "user");
  const std::string content = messages[1]["content"];
  EXPECT_NE(content.find("I moved to Porto"), std::string::npos);
  EXPECT_NE(content.find("Nice, Porto is lovely."), std::string::npos);
  EXPECT_NE(content.find("0. [profile, slot: name] Name is Ana\n"), std::string::npos) << content;
  EXPECT_NE(content.find("1. [preference] Likes tea\n"), std::string::npos) << content;
  EXPECT_EQ(content.find("2. "), std::string::npos);
  const std::string none = extraction_messages("hi", "hello", {})[1]["content"];
  EXPECT_NE(none.find("(none)"), std::string::npos);
}

TEST(MemoryWire, MessagesCutALongTurn) {
  const std::string long_message(size_t{40} * 1024, 'x');
  const std::string content = extraction_messages(long_message, "ok", {})[1]["content"];
  EXPECT_LT(content.size(), size_t{20} * 1024);
  EXPECT_NE(content.find("[...]"), std::string::npos);
}

TEST(MemoryWire, ParsesEveryField) {
  const auto parsed = parse_model_proposals(
      R"({"memories":[{"event":"ADD","text":"Name is Ana","kind":"profile","importance":0.9,
          "retention":"permanent","slot":"Name"},
          {"event":"UPDATE","ref":1,"text":"Likes green tea","kind":"preference"},
          {"event":"RETIRE","ref":0},
          {"event":"DELETE","ref":1,"text":"Likes tea"}]})",
      2);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto& p = *parsed;
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].event, Event::kAdd);
  EXPECT_EQ(p[0].text, "Name is Ana");
  EXPECT_EQ(p[0].kind, "profile");
  EXPECT_DOUBLE_EQ(p[0].importance, 0.9);
  EXPECT_EQ(p[0].retention, "permanent");
  EXPECT_EQ(p[0].slot, "name");
  EXPECT_EQ(p[0].ref, -1);
  EXPECT_EQ(p[1].event, Event::kUpdate);
  EXPECT_EQ(p[1].ref, 1);
  EXPECT_EQ(p[1].text, "Likes green tea");
  EXPECT_EQ(p[2].event, Event::kRetire);
  EXPECT_EQ(p[2].ref, 0);
  EXPECT_TRUE(p[2].text.empty());  // a retirement needs only its ref
  EXPECT_EQ(p[3].event, Event::kDelete);
  EXPECT_EQ(p[3].ref, 1);
}

TEST(MemoryWire, TakesTheJsonOutOfFencesAndProse) {
  const std::string item = R"({"memories":[{"event":"ADD","text":"Lives in Porto"}]})";
  for (const std::string& answer : {
           "```json\n" + item + "\n```",
           "```\n" + item + "\n```\n",
           "Sure! Here is what I found:\n" + item + "\nLet me know if you need more.",
           "Format {like this}: " + item,
       }) {
    const auto parsed = parse_model_proposals(answer, 0);
    ASSERT_TRUE(parsed.ok()) << answer;
    ASSERT_EQ(parsed->size(), 1u) << answer;
    EXPECT_EQ((*parsed)[0].text, "Lives in Porto");
  }
}

TEST(MemoryWire, AcceptsABareArrayAndASingleItem) {
  const auto array = parse_model_proposals(
      R"([{"event":"ADD","text":"Likes tea"},{"event":"add","text":"Has a cat"}])", 0);
  ASSERT_TRUE(array.ok());
  ASSERT_EQ(array->size(), 2u);
  EXPECT_EQ((*array)[1].text, "Has a cat");
  EXPECT_EQ((*array)[1].event, Event::kAdd);  // events ignore case
  const auto single = parse_model_proposals(R"({"event":"ADD","text":"Likes tea"})", 0);
  ASSERT_TRUE(single.ok());
  ASSERT_EQ(single->size(), 1u);
  const auto empty = parse_model_proposals(R"({"memories":[]})", 3);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  const auto unusable = parse_model_proposals(R"([{"foo":1}])", 3);
  ASSERT_TRUE(unusable.ok());
  EXPECT_TRUE(unusable->empty());
  const auto none = parse_model_proposals(R"({"memories":[{"event":"NONE"}]})", 3);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(MemoryWire, DropsRefsOutOfRange) {
  const auto parsed = parse_model_proposals(
      R"({"memories":[
          {"event":"UPDATE","ref":2,"text":"a"},
          {"event":"UPDATE","ref":-1,"text":"b"},
          {"event":"RETIRE"},
          {"event":"DELETE","ref":null},
          {"event":"DELETE","ref":1.5},
          {"event":"DELETE","ref":"x"},
          {"event":"DELETE","ref":99999999999999999999},
          {"event":"UPDATE","ref":"1","text":"kept: a string of digits"},
          {"event":"RETIRE","ref":0.0},
          {"event":"ADD","ref":7,"text":"kept: an addition needs no ref"}]})",
      2);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_EQ((*parsed)[0].ref, 1);
  EXPECT_EQ((*parsed)[1].event, Event::kRetire);
  EXPECT_EQ((*parsed)[1].ref, 0);
  EXPECT_EQ((*parsed)[2].ref, -1);
  // With no candidates, no ref is in range.
  const auto none = parse_model_proposals(R"([{"event":"DELETE","ref":0}])", 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(MemoryWire, DropsItemsOfTheWrongTypeAndDefaultsFields) {
  const auto parsed = parse_model_proposals(
      R"({"memories":[
          "Likes tea", 42, null, [],
          {"event":3,"text":"bad event"},
          {"event":"MERGE","text":"unknown event"},
          {"event":"ADD","text":5},
          {"event":"ADD","text":"   "},
          {"event":"ADD"},
          {"event":"UPDATE","ref":0},
          {"text":"no event is an addition","kind":7,"importance":"high","slot":4,
           "retention":["long"]}]})",
      1);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->size(), 1u);
  const Proposal& p = (*parsed)[0];
  EXPECT_EQ(p.event, Event::kAdd);
  EXPECT_EQ(p.text, "no event is an addition");
  EXPECT_EQ(p.kind, "fact");
  EXPECT_DOUBLE_EQ(p.importance, 0.5);
  EXPECT_EQ(p.slot, "");
  EXPECT_EQ(p.retention, "");
}

TEST(MemoryWire, ClampsAndNormalizesFields) {
  const auto parsed = parse_model_proposals(
      R"([{"text":"a","importance":7,"kind":"Preference","retention":"LONG"},
          {"text":"b","importance":-2,"kind":"opinion","retention":"forever"},
          {"text":"  c \n d  ","slot":"  Favorite   Color "}])",
      0);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_DOUBLE_EQ((*parsed)[0].importance, 1.0);
  EXPECT_EQ((*parsed)[0].kind, "preference");
  EXPECT_EQ((*parsed)[0].retention, "long");
  EXPECT_DOUBLE_EQ((*parsed)[1].importance, 0.0);
  EXPECT_EQ((*parsed)[1].kind, "fact");
  EXPECT_EQ((*parsed)[1].retention, "");
  EXPECT_EQ((*parsed)[2].text, "c d");
  EXPECT_EQ((*parsed)[2].slot, "favorite color");
}

TEST(MemoryWire, CutsLongTextsAndSlotsAtACharacterBoundary) {
  std::string long_text;
  for (int k = 0; k < 400; ++k) long_text += "\xC3\xA9";  // é, 800 bytes
  const nlohmann::json answer = {
      {"memories", {{{"event", "ADD"}, {"text", "x" + long_text}, {"slot", "x" + long_text}}}}};
  const auto parsed = parse_model_proposals(answer.dump(), 0);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->size(), 1u);
  EXPECT_EQ((*parsed)[0].text.size(), 499u);  // 500 would split an "é"
  EXPECT_TRUE(valid_utf8((*parsed)[0].text));
  EXPECT_EQ((*parsed)[0].slot.size(), 63u);
  EXPECT_TRUE(valid_utf8((*parsed)[0].slot));
}

TEST(MemoryWire, KeepsAtMost32Items) {
  nlohmann::json items = nlohmann::json::array();
  for (int k = 0; k < 40; ++k)
    items.push_back({{"event", "ADD"}, {"text", "fact " + std::to_string(k)}});
  const auto parsed = parse_model_proposals(nlohmann::json{{"memories", items}}.dump(), 0);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->size(), kMaxProposals);
  EXPECT_EQ(parsed->back().text, "fact 31");
}

TEST(MemoryWire, UnparseableAnswersAreErrors) {
  for (std::string_view answer :
       {"", "I could not find anything worth remembering.", "{memories: [}",
        R"({"memories":"none"})", R"({"memories":{"event":"ADD"}})", R"({"facts":[]})",
        "```json\n{\"memories\":[\n```"}) {
    const auto parsed = parse_model_proposals(answer, 1);
    ASSERT_FALSE(parsed.ok()) << answer;
    EXPECT_EQ(parsed.error().code, ErrorCode::kBadGateway) << answer;
    EXPECT_EQ(parsed.error().reason, "extraction_unparseable") << answer;
  }
}

TEST(MemoryWire, DeepOrHugeAnswersComeBack) {
  const std::string deep(kHundredKiB, '[');
  EXPECT_FALSE(parse_model_proposals(deep, 1).ok());
  std::string nested = "{\"memories\":";
  for (int k = 0; k < 10000; ++k) nested += '[';
  for (int k = 0; k < 10000; ++k) nested += ']';
  nested += '}';
  const auto parsed = parse_model_proposals(nested, 1);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->empty());
}

}  // namespace
