// Starts GraphiQL on the page that GET /graphql serves (src/http/graphiql.rs).
// A file of its own, not an inline script, so that the page's
// Content-Security-Policy allows scripts from the server alone.
(function () {
  'use strict';
  // The page's own address is the endpoint, for queries and mutations over
  // HTTP and for subscriptions over WebSocket (graphql-transport-ws, with
  // the headers pane's values as the connection_init payload).
  var url = new URL(window.location.pathname, window.location.origin);
  var socket = new URL(url.href);
  socket.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({ url: url.href, subscriptionUrl: socket.href });
  var defaultQuery = [
    '# Put your token in the headers pane below:',
    '#   {"Authorization": "Bearer <token>"}',
    '# (the demo server prints tokens when it starts).',
    '',
    '{',
    '  partnerships {',
    '    code',
    '    name',
    '  }',
    '}',
    '',
  ].join('\n');
  // GraphiQL keeps its tabs and history in the browser's local storage, and
  // its history keeps each query's headers whatever shouldPersistHeaders
  // says. Keep what GraphiQL stores but its headers (tokens) and responses
  // (case data): neither outlives the page.
  var prefix = 'graphiql:';
  var keys = function () {
    return Object.keys(window.localStorage).filter(function (key) {
      return key.indexOf(prefix) === 0;
    });
  };
  var storage = {
    getItem: function (key) {
      return window.localStorage.getItem(key);
    },
    setItem: function (key, value) {
      var kept = value;
      if (key === prefix + 'headers') {
        kept = '';
      } else {
        try {
          kept = JSON.stringify(JSON.parse(value), function (name, field) {
            return name === 'headers' || name === 'response' ? undefined : field;
          });
        } catch (notJson) {
          // A query's text, kept as it is.
        }
      }
      window.localStorage.setItem(key, kept);
    },
    removeItem: function (key) {
      window.localStorage.removeItem(key);
    },
    clear: function () {
      keys().forEach(function (key) {
        window.localStorage.removeItem(key);
      });
    },
    get length() {
      return keys().length;
    },
  };
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultEditorToolsVisibility: 'headers',
      storage: storage,
      // The headers pane is not kept either (and the setting that would
      // keep it is hidden).
      shouldPersistHeaders: false,
    })
  );
})();
