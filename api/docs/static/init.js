// Loaded from /docs/ so the page needs no inline script (CSP: script-src 'self').

// "Try it out" talks to the server that serves this page. The spec's `servers` names the
// production host, and this page's CSP (connect-src 'self') rightly blocks any other origin, so
// the UI would send every request to a host it may not reach. The document itself is unchanged
// (/api/v1/openapi.json still lists the production server); only the UI's copy is rewritten.
function SameOriginServer() {
  return {
    statePlugins: {
      spec: {
        wrapActions: {
          updateSpec: function (original) {
            return function (specText) {
              var spec;
              try {
                spec = JSON.parse(specText);
              } catch (error) {
                return original(specText);
              }
              spec.servers = [
                {url: window.location.origin, description: "This server (the one serving these docs)"},
              ];
              return original(JSON.stringify(spec));
            };
          },
        },
      },
    },
  };
}

window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [SameOriginServer],
    layout: "BaseLayout",
  });
});
