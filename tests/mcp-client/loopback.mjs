// Preloaded into @modelcontextprotocol/server-everything (node --import ./loopback.mjs): the
// server calls app.listen(PORT), which binds every interface; tests must only ever listen on
// loopback, so a numeric-port listen is bound to 127.0.0.1 instead.
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || /^\d+$/.test(String(args[0]))) {
    const callback = args.find((a) => typeof a === 'function');
    return listen.call(this, Number(args[0]), '127.0.0.1', callback);
  }
  return listen.apply(this, args);
};
