// Dedicated plugin pages by plugin name; every other plugin gets the generic schema forms.
import { globusPage } from "./globus.js";
import { psijPage } from "./psij.js";
import { queueInfoPage } from "./queue_info.js";
import { stagingPage } from "./staging.js";
import { sysinfoPage } from "./sysinfo.js";
import { tasksPage } from "./tasks.js";

export const PAGES = {
  globus: globusPage,
  psij: psijPage,
  queue_info: queueInfoPage,
  staging: stagingPage,
  sysinfo: sysinfoPage,
  tasks: tasksPage,
};
