/*
 * Lifetime profiles (FBMALLOC_PROFILE): the call sites learned long-lived
 * (route.h), carried to the next run of the same program.
 *
 * A site is saved as its module (ELF build id, and path) and the offset of
 * its return address in that module, so ASLR and other processes of the
 * same program agree.  The file is text:
 *
 *   fbmalloc-profile 1
 *   exe /usr/bin/python3.11
 *   L <build id or -> <hex offset> <module path>
 *   ...
 *   end <number of L lines>
 *
 * A missing file is the first run.  A file that is not one of ours, of
 * another program, truncated (no matching end line), too large, or whose
 * lines do not parse is ignored with one line on stderr; a line whose
 * module is not loaded (yet) or was rebuilt (another build id), or whose
 * offset is outside the module's code, is skipped.  Saving writes a
 * temporary file next to the profile and renames it, so concurrent
 * writers (make -j running many processes of one program) never leave a
 * corrupt file: the last one wins.  A process that learned and revised
 * nothing since it loaded the profile (or found none) writes nothing.
 */
#ifndef FB_PROFILE_H
#define FB_PROFILE_H

/* In our constructor (dl_iterate_phdr is safe there): loads the verdicts.
 * Returns the number of sites set long, or -1 without a profile. */
int fb_profile_load(void);
/* At exit: saves the sites long now.  Returns 0, or -1. */
int fb_profile_save(void);

#endif
