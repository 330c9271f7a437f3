// Cluster environments: which launcher started this process and where it sits in the job.
export {
  type ClusterEnvironment,
  ClusterEnvironmentError,
  type DetectOptions,
  describeEnvironment,
  detectEnvironment,
  detectEnvironmentName,
  ENVIRONMENT_NAMES,
  ENVIRONMENT_VARIABLES,
  type EnvironmentMap,
  type EnvironmentName,
  runtimeEnvironment,
} from "./detect.ts";
export { expandHostlist, firstHost, HostlistError, hostlistHosts } from "./hostlist.ts";
export { onRequeueSignal } from "./signal.ts";
