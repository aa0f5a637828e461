// Tests policy/yaml_documents.cc.
#include "policy/yaml_documents.h"

#include <gtest/gtest.h>

#include <string>

namespace hookguard::policy {
namespace {

TEST(LoadFirstDocuments, ReturnsNothingForATextWithoutADocument) {
  EXPECT_TRUE(load_first_documents("").empty());
  EXPECT_TRUE(load_first_documents("# only a comment\n").empty());
}

TEST(LoadFirstDocuments, ReturnsTheOnlyDocument) {
  const auto documents = load_first_documents("a: 1\nb: [x, y]\n");
  ASSERT_EQ(documents.size(), 1u);
  ASSERT_TRUE(documents[0].IsMap());
  EXPECT_EQ(documents[0]["a"].as<int>(), 1);
  EXPECT_EQ(documents[0]["b"][1].as<std::string>(), "y");
}

TEST(LoadFirstDocuments, MarksMoreThanOneDocumentWithASecondEmptyEntry) {
  for (const char* text : {"a: 1\n---\nb: 2\n", "a: 1\n---\nb: 2\n---\nc: 3\n---\nd: 4\n"}) {
    const auto documents = load_first_documents(text);
    ASSERT_EQ(documents.size(), 2u) << text;
    EXPECT_EQ(documents[0]["a"].as<int>(), 1);
    EXPECT_FALSE(documents[1].IsDefined() && documents[1].IsMap());
  }
}

TEST(LoadFirstDocuments, ThrowsOnMalformedYaml) {
  EXPECT_THROW(load_first_documents("a: [1, 2\n"), YAML::Exception);
}

// Inputs on which YAML::LoadAll loops forever: each must return or throw.
TEST(LoadFirstDocuments, EndsOnInputsThatHangLoadAll) {
  for (const std::string& text : {std::string(",\xfe"), std::string(",:  [\nx]")}) {
    try {
      EXPECT_LE(load_first_documents(text).size(), 2u);
    } catch (const YAML::Exception&) {
    }
  }
}

}  // namespace
}  // namespace hookguard::policy
