/**
 * The forms a secret may take in a string of an audit event or a log line:
 * as is; escaped as inside a JSON string (a Cedar entity id such as
 * `Key::"a\"b"`, a plugin that logs JSON); percent-encoded as a URL component
 * (upper- and lower-case hex), with `+` for spaces as in a form, or as the URL
 * parser writes a path. Forms that equal the secret are not repeated.
 */
export function secretForms(secret: string): string[] {
  const forms = new Set([secret, JSON.stringify(secret).slice(1, -1)]);
  try {
    const component = encodeURIComponent(secret);
    forms.add(component);
    forms.add(component.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()));
    forms.add(component.replaceAll("%20", "+"));
    forms.add(encodeURI(secret));
  } catch {
    // A lone surrogate has no URL form.
  }
  return [...forms];
}

/**
 * The secrets in a header value: the value itself and, where a part of it can
 * travel alone, that part: the credentials after an `Authorization` scheme
 * (`Bearer <token>`; for `Basic`, also the decoded `user:password` and the
 * password), and each cookie's value (`a=1; session=<value>`).
 */
export function headerSecrets(value: string): string[] {
  const secrets = [value];
  const scheme = /^([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)[ \t]+(\S.*)$/s.exec(value);
  if (scheme) {
    const credentials = scheme[2]!.trim();
    secrets.push(credentials);
    if (scheme[1]!.toLowerCase() === "basic") {
      try {
        const decoded = atob(credentials);
        secrets.push(decoded);
        const colon = decoded.indexOf(":");
        if (colon >= 0) secrets.push(decoded.slice(colon + 1));
      } catch {
        // Not base64: the value and the credentials are masked as they are.
      }
    }
  }
  if (value.includes("=")) {
    for (const pair of value.split(";")) {
      const equals = pair.indexOf("=");
      if (equals > 0) secrets.push(pair.slice(equals + 1).trim().replace(/^"(.*)"$/s, "$1"));
    }
  }
  return secrets;
}
