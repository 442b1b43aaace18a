// Starts GraphiQL on ordergraph's /graphql page. Served as a file (not inline) so the page's
// Content-Security-Policy can allow scripts from this origin only. The server writes the endpoint
// URLs into the #graphiql-config JSON block; React, ReactDOM, GraphiQL and the explorer plugin
// are the UMD globals of the scripts loaded before this one.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("graphiql-config").textContent);

  // Behind a TLS-terminating proxy the server may see http while the browser is on https, and a
  // browser refuses ws: from an https page; follow the page's own scheme.
  var subscriptionUrl = new URL(config.subscriptionUrl);
  if (window.location.protocol === "https:") {
    subscriptionUrl.protocol = "wss:";
  }

  var fetcher = GraphiQL.createFetcher({
    url: config.url,
    subscriptionUrl: subscriptionUrl.toString(),
  });

  var explorer = GraphiQLPluginExplorer.explorerPlugin();

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: config.defaultQuery,
      plugins: [explorer],
      // Open the headers editor: pasting an Authorization header is the first thing most
      // developers need to do.
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      // Tokens pasted into the headers editor stay in this tab's memory only.
      shouldPersistHeaders: false,
    }),
  );
})();
