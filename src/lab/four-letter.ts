/**
 * The four-letter words live in src/zk/admin.ts (one parser for the lab, the audit and the
 * forensics' captures); this module keeps the lab's old import path working.
 */
export { FourLetterError, fourLetterWord, parseDump, parseMntr, parseSrvr, type DumpInfo, type SrvrInfo } from '../zk/admin.ts';
