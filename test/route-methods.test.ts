import t from 'tap';
import { RouteMethods } from '../broker/http/route-methods.js';

t.test('RouteMethods: parameters match one segment, * the rest, literals exactly', async (t) => {
  const r = new RouteMethods();
  r.add('/v1/notices', 'POST');
  r.add('/v1/notices/:id/acks', ['GET', 'HEAD']);
  r.add('/v1/notices/:id/proof', 'GET');
  r.add('/docs/*', 'GET');
  r.add('/v1/a.b', 'GET');
  t.same(r.allowed('/v1/notices'), ['POST']);
  t.same(r.allowed('/v1/notices/x/acks'), ['GET', 'HEAD']);
  t.same(r.allowed('/v1/notices//acks'), [], 'a parameter is never empty');
  t.same(r.allowed('/v1/notices/x/y/acks'), [], 'a parameter is one segment');
  t.same(r.allowed('/docs/static/index.html'), ['GET']);
  t.same(r.allowed('/v1/aXb'), [], 'a dot in a path is literal');
  t.same(r.allowed('/v1/notices/'), []);
});
