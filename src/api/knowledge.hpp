// Knowledge bases and their documents (`/api/v1/knowledge-bases`): create, list, get, update
// and delete bases; upload documents (multipart or JSON text), list them with their status,
// get, replace, rename or re-tag, and delete them. Uploads are stored, then ingested by a
// durable job (knowledge/ingest.hpp): the upload answers 202 with the document "queued", and
// its status and progress are read back until it is "ready" or "failed". Search
// (`POST .../{id}/search`) is hybrid: nearest neighbours and BM25, fused by rank, with filters
// on document attributes, scores and highlights (knowledge/index/base_index.hpp).
//
// A knowledge base belongs to a tenant: callers of that tenant may read it; changing it takes
// a service or admin key (a user's key reads and searches only). Another tenant's base is a
// 404, like a missing one.
#pragma once

#include "api/context.hpp"
#include "http/router.hpp"
#include "knowledge/embed/embedders.hpp"
#include "knowledge/index/index_manager.hpp"
#include "knowledge/settings.hpp"

namespace parley::api {

// `index`: this process's search indexes; `embedders`: each base's embedder (its queries, and
// the names a base may be given).
void add_knowledge_routes(http::Router& router, Context& context,
                          const knowledge::KnowledgeSettings& settings,
                          knowledge::IndexManager& index, knowledge::Embedders& embedders);

}  // namespace parley::api
