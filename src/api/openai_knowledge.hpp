// OpenAI's files and vector stores, on Parley's knowledge bases, so the official SDKs work
// unchanged: `POST/GET /v1/files`, `GET/DELETE /v1/files/{id}` (and `/content`), and
// `/v1/vector_stores` (create with file_ids, list, get, modify, delete), their files (attach,
// list with status, get, detach) and `POST /v1/vector_stores/{id}/search`, in OpenAI's shapes.
//
// A vector store is a knowledge base; a vector-store file is a document made from the file
// (its id is the file's, as OpenAI's are); statuses map as queued/processing -> in_progress,
// ready -> completed, failed -> failed with last_error. Search scores are the fused rank
// score scaled to 0..1 (1: first on both sides). Access is the knowledge routes' (tenant
// scoped; changes need a service or admin key).
#pragma once

#include "api/context.hpp"
#include "http/router.hpp"
#include "knowledge/embed/embedders.hpp"
#include "knowledge/index/index_manager.hpp"
#include "knowledge/settings.hpp"

namespace parley::api {

void add_openai_knowledge_routes(http::Router& router, Context& context,
                                 const knowledge::KnowledgeSettings& settings,
                                 knowledge::IndexManager& index, knowledge::Embedders& embedders);

}  // namespace parley::api
