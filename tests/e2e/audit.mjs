// Runs the graphql-http package's GraphQL-over-HTTP server audits against a URL and prints one
// JSON array of {id, name, status, reason} to stdout. Usage: node tests/e2e/audit.mjs URL
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node tests/e2e/audit.mjs http://127.0.0.1:PORT/graphql');
  process.exit(2);
}
const results = [];
for (const { fn } of serverAudits({ url })) {
  const result = await fn();
  results.push({
    id: result.id,
    name: result.name,
    status: result.status,
    reason: result.status === 'ok' ? null : result.reason,
  });
}
console.log(JSON.stringify(results));
