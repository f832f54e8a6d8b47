// Starts s3rver on a free loopback port with one bucket and prints "READY <port>"; exits when stdin closes,
// so the server dies with the test process even if it is killed.
const path = require('path');
const dir = process.env.CAIRN_S3RVER_DIR || '/opt/cairn-tools/s3rver';
const S3rver = require(path.join(dir, 'node_modules', 's3rver'));
const server = new S3rver({
  address: '127.0.0.1', port: 0, silent: true, directory: process.argv[2],
  configureBuckets: [{ name: process.argv[3] || 'cairn' }],
});
server.run().then(a => console.log(`READY ${Array.isArray(a) ? a[1] : a.port}`)).catch(e => { console.error(e); process.exit(1); });
process.stdin.on('end', () => server.close().then(() => process.exit(0)));
process.stdin.resume();
