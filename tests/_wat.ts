import wabtInit from "wabt";

let wabt: Awaited<ReturnType<typeof wabtInit>> | undefined;

/**
 * Compiles WebAssembly text to a binary with the npm build of wabt.
 *
 * @param source The `.wat` text.
 * @param filename Used in error messages.
 * @returns The module bytes.
 */
export async function compileWat(source: string, filename = "module.wat"): Promise<Uint8Array> {
  wabt ??= await wabtInit();
  const module = wabt.parseWat(filename, source, {
    bulk_memory: true,
    mutable_globals: true,
    sign_extension: true,
    multi_value: true,
    threads: true,
  });
  try {
    module.resolveNames();
    module.validate();
    return new Uint8Array(module.toBinary({ write_debug_names: true }).buffer);
  } finally {
    module.destroy();
  }
}
