// stripe-declines.mjs UPSTREAM PORT_FILE - Stripe's test-mode declines in front of stripe-mock.
//
// stripe-mock validates requests against Stripe's OpenAPI description but answers every card
// with the same success fixture, so tok_chargeDeclined would be charged. Real Stripe declines
// that test card with a 402 card_error, "Your card was declined." This proxy answers exactly that
// for requests carrying tok_chargeDeclined and passes everything else to stripe-mock unchanged,
// so the browser suite sees the payments adapter turn Stripe's decline into the message the
// storefront shows. Listens on 127.0.0.1 with a port of the system's choosing, written to
// PORT_FILE once listening.
import http from 'node:http';
import { writeFileSync } from 'node:fs';

const [upstream, portFile] = process.argv.slice(2);
if (!upstream || !portFile) {
  console.error('usage: node stripe-declines.mjs UPSTREAM PORT_FILE');
  process.exit(2);
}
const up = new URL(upstream);

// Stripe's body for a declined test card (https://docs.stripe.com/testing#declined-payments).
const DECLINE = {
  error: {
    code: 'card_declined',
    decline_code: 'generic_decline',
    doc_url: 'https://stripe.com/docs/error-codes/card-declined',
    message: 'Your card was declined.',
    type: 'card_error',
  },
};

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > 1 << 20) req.destroy();
    else chunks.push(c);
  });
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (req.method === 'POST' && body.toString().includes('tok_chargeDeclined')) {
      const text = JSON.stringify(DECLINE);
      res.writeHead(402, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'request-id': 'req_declined' });
      res.end(text);
      return;
    }
    const fwd = http.request({
      host: up.hostname, port: up.port, method: req.method, path: req.url,
      headers: { ...req.headers, host: up.host, 'content-length': body.length },
    }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    fwd.on('error', () => { res.writeHead(502); res.end(); });
    fwd.end(body);
  });
});
server.listen(0, '127.0.0.1', () => {
  writeFileSync(portFile, String(server.address().port));
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
