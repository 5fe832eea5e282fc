// What the page reads from window besides the DOM: a test's smaller upload block size (tests/e2e).
interface Window {
  APPBACKUPS_UPLOAD_BLOCK_BYTES?: number | string;
}
