// Apollo Client's persisted-queries link against a live server: the hash first, then hash and
// text when the server answers PERSISTED_QUERY_NOT_FOUND, then the hash alone.
// Usage: node tests/e2e/apollo_persisted_queries.mjs URL post|get
// Prints one JSON object: {requests: [{method, hasQuery, hash}], results: [...]}.
import { createHash } from 'node:crypto';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries';

const [url, mode] = process.argv.slice(2);
if (!url || !['post', 'get'].includes(mode)) {
  console.error('usage: node tests/e2e/apollo_persisted_queries.mjs URL post|get');
  process.exit(2);
}

const requests = [];
async function recordingFetch(input, init) {
  const target = new URL(typeof input === 'string' ? input : input.url);
  const method = (init?.method ?? 'GET').toUpperCase();
  let body = {};
  if (method === 'POST') {
    body = JSON.parse(init.body);
  } else {
    for (const [key, value] of target.searchParams) {
      body[key] = key === 'extensions' || key === 'variables' ? JSON.parse(value) : value;
    }
  }
  requests.push({
    method,
    hasQuery: typeof body.query === 'string',
    hash: body.extensions?.persistedQuery?.sha256Hash ?? null,
  });
  const response = await fetch(input, init);
  requests[requests.length - 1].status = response.status;
  return response;
}

function client() {
  const persisted = createPersistedQueryLink({
    sha256: (text) => createHash('sha256').update(text).digest('hex'),
    useGETForHashedQueries: mode === 'get',
  });
  return new ApolloClient({
    link: persisted.concat(new HttpLink({ uri: url, fetch: recordingFetch })),
    cache: new InMemoryCache(),
  });
}

const PRODUCTS = gql`
  query PersistedProducts($first: Int) {
    products(first: $first) {
      edges {
        node {
          sku
        }
      }
    }
  }
`;

const results = [];
const first = client();
for (const first_ of [2, 3]) {
  const { data, error } = await first.query({
    query: PRODUCTS,
    variables: { first: first_ },
    fetchPolicy: 'network-only',
  });
  results.push({ skus: data?.products.edges.map((e) => e.node.sku) ?? null, error: error?.message ?? null });
}
// A new client (another page load) knows nothing: its hash alone is enough now.
const second = client();
const { data, error } = await second.query({
  query: PRODUCTS,
  variables: { first: 1 },
  fetchPolicy: 'network-only',
});
results.push({ skus: data?.products.edges.map((e) => e.node.sku) ?? null, error: error?.message ?? null });
console.log(JSON.stringify({ requests, results }));
