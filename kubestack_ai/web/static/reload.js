// The storage-unavailable page tries again by itself (no inline script: CSP default-src 'self').
setTimeout(function () { window.location.reload(); }, 10000);
